using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Evaluation;

namespace Pargs.Tests.Cli;

/// <summary>
/// The reward models of the families beyond Llama end to end through the real CLI: train-rm a few steps from a tiny
/// reference checkpoint of the family (writing its …ForSequenceClassification), then generate --method pargs guided by
/// it.
/// </summary>
public class CliFamilyRewardModelTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string PairsFile()
    {
        string[] good = [" The girl waved at the boat.", " The sea was kind to her.", " She smiled at the sailor."];
        string[] bad = [" The boat.", " Sea.", " It was a day."];
        string path = _dir.File("pairs.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 8).Select(i => new JsonObject
        {
            ["prompt"] = "Once upon a time", ["chosen"] = good[i % 3], ["rejected"] = bad[i % 3],
        }.ToJsonString()));
        return path;
    }

    [Theory]
    [InlineData("phi3", "Phi3ForSequenceClassification", "phi3")]
    [InlineData("gpt_neox", "GPTNeoXForSequenceClassification", "gpt_neox")]
    [InlineData("qwen3", "Qwen3ForSequenceClassification", "qwen3")]
    [InlineData("gemma2", "Gemma2ForSequenceClassification", "gemma2")]
    [InlineData("gemma3", "Gemma3TextForSequenceClassification", "gemma3_text")]
    public void Train_rm_then_generate_with_pargs_guided_by_it(string name, string architecture, string modelType)
    {
        string lm = _dir.File(name);
        ReferenceCheckpoints.Write(name, lm);
        string rm = _dir.File(name + "-rm");
        PargsCli.Succeeds("train-rm", "--model", lm, "--data", PairsFile(), "--out", rm, "--max-steps", "2", "--batch-size", "4",
            "--log-every", "1", "--schedule", "constant", "--lr", "1e-3", "--threads", "1");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(rm, HuggingFaceFolder.ConfigFile)))!;
        Assert.Equal(architecture, config["architectures"]![0]!.GetValue<string>());
        Assert.Equal(modelType, config["model_type"]!.GetValue<string>());
        var weights = Safetensors.Load(Path.Combine(rm, HuggingFaceFolder.WeightsFile));
        Assert.Contains("score.weight", weights.Keys);
        foreach (var t in weights.Values) t.Dispose();

        string output = _dir.File(name + ".jsonl");
        var run = PargsCli.Succeeds("generate", "--model", lm, "--method", "pargs", "--reward-model", rm, "-k", "3", "-w", "2",
            "--prompt", "Once upon a time", "--max-new-tokens", "6", "--out", output, "--threads", "1");
        var records = GenerationJsonl.Read(output);
        var record = Assert.Single(records);
        Assert.Equal("pargs", record.Method);
        Assert.StartsWith("Once upon a time", record.Instruction);
        Assert.NotNull(record.Output);
    }
}
