using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Models.Families.Gemma;

namespace Pargs.Tests.Cli;

/// <summary>
/// A Gemma reward model end to end through the CLI: train-rm a few steps on the tiny Gemma reference checkpoints
/// (the RM is Gemma…ForSequenceClassification on the same backbone), then generate --method pargs guided by it, and
/// info showing the honoured Gemma fields.
/// </summary>
public class CliGemmaTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string PairsFile()
    {
        string path = _dir.File("pairs.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 6).Select(i => new JsonObject
        {
            ["prompt"] = "Once upon a time", ["chosen"] = i % 2 == 0 ? " the girl waved at the boat." : " the sea was kind.",
            ["rejected"] = i % 2 == 0 ? " the boat." : " a sail.",
        }.ToJsonString()));
        return path;
    }

    [Theory]
    [InlineData("gemma2", "Gemma2ForSequenceClassification")]
    [InlineData("gemma3", "Gemma3TextForSequenceClassification")]
    public void Train_rm_then_generate_pargs_guided_by_the_gemma_reward_model(string name, string architecture)
    {
        string lm = _dir.File(name);
        GemmaReferenceCheckpoints.Write(name, lm);
        string rm = _dir.File(name + "-rm");
        PargsCli.Succeeds("train-rm", "--model", lm, "--data", PairsFile(), "--out", rm, "--max-steps", "2", "--batch-size", "2",
            "--log-every", "1", "--schedule", "constant", "--threads", "1");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(rm, HuggingFaceFolder.ConfigFile)))!;
        Assert.Equal(architecture, (string?)config["architectures"]![0]);
        Assert.Equal(name == "gemma2" ? "gemma2" : "gemma3_text", (string?)config["model_type"]);

        string output = _dir.File(name + ".jsonl");
        PargsCli.Succeeds("generate", "--model", lm, "--reward-model", rm, "--method", "pargs", "-k", "3", "-w", "1",
            "--prompt", "Once upon a time", "--max-new-tokens", "6", "--out", output, "--threads", "1");
        var records = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Single(records);
        Assert.Equal("pargs", (string?)records[0]["method"]);
        Assert.False(string.IsNullOrEmpty((string?)records[0]["output"]), records[0].ToJsonString());
    }

    [Fact]
    public void Info_prints_the_honoured_gemma_fields()
    {
        string lm = _dir.File("gemma3");
        GemmaReferenceCheckpoints.Write("gemma3", lm);
        var run = PargsCli.Succeeds("info", "--model", lm);
        foreach (var field in new[] { "query_pre_attn_scalar", "final_logit_softcapping", "sliding_window", "layer_types", "rope_local_base_freq", "q_norm" })
            Assert.Contains(field, run.Stdout);
        Assert.Contains("SSGS", run.StdoutFlat);
    }
}
