using System.Text.Json.Nodes;
using Pargs.Checkpoints;

namespace Pargs.Tests.Cli;

/// <summary>train-rm --objective farma | genarm → generate --method farma | genarm, cached and --naive, on stories260K.</summary>
public class CliVocabularyRewardModelTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string PairsFile()
    {
        string path = _dir.File("pairs.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 4).Select(i => new JsonObject
        {
            ["prompt"] = "Once upon a time", ["chosen"] = " The dog was happy and played.", ["rejected"] = " The dog was sad.",
        }.ToJsonString()));
        return path;
    }

    [Theory]
    [InlineData("farma", "farma")]
    [InlineData("farma", "farma-g")]
    [InlineData("genarm", "genarm")]
    public void A_trained_vocabulary_reward_model_guides_generation_identically_on_both_engines(string objective, string method)
    {
        string rm = _dir.File($"rm-{objective}-{method}");
        PargsCli.Succeeds("train-rm", "--model", PargsCli.Stories260KGguf, "--data", PairsFile(), "--out", rm, "--objective", objective,
            "--max-steps", "2", "--batch-size", "2", "--threads", "1");
        string config = File.ReadAllText(Path.Combine(rm, HuggingFaceFolder.ConfigFile));
        Assert.Contains($"\"pargs_objective\": \"{objective}\"", config);
        Assert.Contains("ForCausalLM", config);

        string[] Generate(params string[] extra) =>
            ["generate", "--model", PargsCli.Stories260KGguf, "--reward-model", rm, "--method", method, "-p", "Once upon a time",
             "--max-new-tokens", "10", "--seed", "4", "--threads", "1", .. extra];
        var cached = PargsCli.Succeeds(Generate());
        var naive = PargsCli.Succeeds(Generate("--naive"));
        Assert.Equal(cached.Stdout, naive.Stdout);
        Assert.StartsWith("Once upon a time", cached.Stdout);
    }

    [Fact]
    public void Options_of_another_objective_and_a_scalar_reward_model_are_refused_with_one_line()
    {
        string data = PairsFile();
        PargsCli.Fails(["train-rm", "--model", PargsCli.Stories260KGguf, "--data", data, "--out", _dir.File("x"), "--objective", "farma", "--beta", "0.1"],
            "--beta has no effect");
        PargsCli.Fails(["generate", "--model", PargsCli.Stories260KGguf, "--method", "genarm", "--reward-model", TestPaths.ShippedPartialRm, "-p", "Once", "--max-new-tokens", "2"],
            "--objective genarm");
    }
}
