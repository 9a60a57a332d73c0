using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Models;

namespace Pargs.Tests.Cli;

/// <summary>`pargs info`: tied weights counted once; the config fields the family honours are printed.</summary>
public class InfoCommandTests
{
    [Fact]
    public void Info_counts_a_tied_head_once_and_prints_the_honoured_config_fields()
    {
        using var dir = new TempDir();
        var gpt2 = Models.TinyModels.Gpt2Config();
        string gpt2Folder = dir.File("gpt2");
        long unique;
        using (var lm = Models.TinyModels.RandomLM(gpt2))
        {
            HuggingFaceFolder.Save(gpt2Folder, gpt2, lm.Architecture, lm.StateDictForSaving());
            unique = lm.parameters().Sum(p => p.numel()); // the tied head is not a parameter of its own
        }
        var run = PargsCli.Succeeds("info", "--model", gpt2Folder);
        Assert.Contains($"{unique:N0}", run.Stdout);
        Assert.Contains("layer_norm_epsilon", run.Stdout);

        var llama = Models.TinyModels.LlamaConfig() with
        {
            RopeScaling = new RopeScaling { Type = "llama3", Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositions = 32 },
            MoreEosTokenIds = new ValueList<int>([5]),
        };
        string llamaFolder = dir.File("llama");
        using (var lm = Models.TinyModels.RandomLM(llama))
            HuggingFaceFolder.Save(llamaFolder, llama, lm.Architecture, lm.StateDictForSaving());
        Assert.Contains("llama3", JsonNode.Parse(File.ReadAllText(Path.Combine(llamaFolder, "config.json")))!["rope_scaling"]!.ToJsonString());
        run = PargsCli.Succeeds("info", "--model", llamaFolder);
        foreach (var expected in new[] { "rope_theta", "5000", "rope_scaling", "llama3", "rms_norm_eps", "attention_bias", "head_dim", "2, 5" })
            Assert.Contains(expected, run.Stdout);
    }
}
