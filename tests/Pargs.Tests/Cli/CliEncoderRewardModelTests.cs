using System.Text.Json.Nodes;
using Pargs.Rewards;
using Pargs.Tests.Models.Encoders;

namespace Pargs.Tests.Cli;

/// <summary>`pargs generate --rm` and `pargs eval --reward-model` with an encoder classifier, and --reward-label, as a user runs them.</summary>
public class CliEncoderRewardModelTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string Bert(string input = "pair")
    {
        var config = TinyEncoders.Bert();
        config[EncoderInputs.ConfigField] = input;
        return TinyEncoders.Write(_dir.File("bert-rm"), config, seed: 8);
    }

    [Fact]
    public void Generate_with_an_encoder_reward_model_needs_and_uses_the_reward_label()
    {
        string rm = Bert();
        var run = PargsCli.Succeeds("generate", "--method", "pargs", "--rm", rm, "--reward-label", "POSITIVE", "-k", "3", "-w", "2",
            "--max-new-tokens", "5", "--prompt", "Once upon a time", "--seed", "1", "--threads", "1");
        Assert.StartsWith("Once upon a time", run.Stdout);

        var noLabel = PargsCli.Run("generate", "--method", "args", "--rm", rm, "--max-new-tokens", "3", "--threads", "1");
        Assert.Equal(1, noLabel.ExitCode);
        Assert.Contains("2 labels (0: NEGATIVE, 1: POSITIVE)", noLabel.Stderr);
        var wrong = PargsCli.Run("generate", "--method", "best-of-n", "--rm", rm, "--reward-label", "HAPPY", "--max-new-tokens", "3", "--threads", "1");
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("--reward-label \"HAPPY\" is not one of the classifier's labels", wrong.Stderr);
        var onCausal = PargsCli.Run("generate", "--method", "pargs", "--rm", TestPaths.ShippedPartialRm, "--reward-label", "POSITIVE", "--max-new-tokens", "3");
        Assert.Equal(1, onCausal.ExitCode);
        Assert.Contains("--reward-label applies to encoder classifiers", onCausal.Stderr);
    }

    [Fact]
    public void Eval_grades_with_an_encoder_as_the_gold_reward()
    {
        string rm = Bert("text");
        string generations = _dir.File("gens.jsonl");
        PargsCli.Succeeds("generate", "--method", "topk", "--prompts", Path.Combine(TestPaths.RepoRoot, "data", "prompts", "story-openings.txt"),
            "--max-new-tokens", "4", "--out", generations, "--threads", "1");
        string outDir = _dir.File("eval");
        PargsCli.Succeeds("eval", "-g", generations, "--reward-model", rm, "--reward-label", "POSITIVE", "--no-model", "--baseline", "none", "--out", outDir);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")))!;
        Assert.Contains("rm:bert-rm:POSITIVE", report.ToJsonString());
        var both = PargsCli.Run("eval", "-g", generations, "--reward", "vader-negative", "--reward-model", rm, "--no-model", "--out", _dir.File("eval2"));
        Assert.Equal(1, both.ExitCode);
        Assert.Contains("not both", both.Stderr);
    }
}
