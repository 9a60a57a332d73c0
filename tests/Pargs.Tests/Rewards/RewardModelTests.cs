using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Pargs.Tests.Rewards;

public class RewardModelTests
{
    [Fact]
    public void ParameterNamesAreHuggingFaceSequenceClassificationNames()
    {
        var llama = RewardModel.Create(TinyModels.LlamaConfig());
        var names = llama.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("model.embed_tokens.weight", names);
        Assert.Contains("model.layers.1.self_attn.q_proj.weight", names);
        Assert.Contains("model.norm.weight", names);
        Assert.Contains("score.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("lm_head"));
        Assert.Equal(new long[] { 1, 32 }, llama.ScoreWeight.shape);
        Assert.Equal("LlamaForSequenceClassification", llama.Architecture);

        var gpt2 = RewardModel.Create(TinyModels.Gpt2Config());
        Assert.Contains("transformer.wte.weight", gpt2.named_parameters().Select(p => p.name));
        Assert.Equal("GPT2ForSequenceClassification", gpt2.Architecture);
        Assert.Equal("Qwen2ForSequenceClassification", RewardModel.Create(TinyModels.Qwen2Config()).Architecture);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void PrefixRewardsEqualRewardsOfEachPrefixRunAlone(string family)
    {
        var config = family == "llama" ? TinyModels.LlamaConfig() : TinyModels.Gpt2Config();
        var model = RewardModel.Create(config, seed: 2);
        TinyModels.Randomize(model, 2);
        model.eval();
        var rows = new[] { TinyModels.Tokens(7, config.VocabSize, 1), TinyModels.Tokens(4, config.VocabSize, 2) };
        var ids = zeros(2, 7, dtype: ScalarType.Int64);
        var valid = zeros(2, 7, dtype: ScalarType.Bool);
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < rows[b].Length; t++) { ids[b, t] = rows[b][t]; valid[b, t] = true; }
        using var _ = no_grad();
        var prefix = model.PrefixRewards(ids, valid);
        var sequence = model.SequenceRewards(ids, valid);
        for (int b = 0; b < 2; b++)
        {
            for (int t = 1; t <= rows[b].Length; t++)
            {
                var alone = model.SequenceRewards(tensor(rows[b][..t].Select(i => (long)i).ToArray(), 1, t), ones(1, t, dtype: ScalarType.Bool));
                Assert.Equal(alone.item<float>(), prefix[b, t - 1].item<float>(), 1e-5);
            }
            Assert.Equal(prefix[b, rows[b].Length - 1].item<float>(), sequence[b].item<float>(), 1e-6);
        }
        // ScoreFromHidden is the head alone (what the decoding path applies to cached hidden states).
        var hidden = model.Backbone.Forward(ids, AttentionMasks.Positions(null, valid), AttentionMasks.Causal(null, valid), null);
        Assert.True(model.ScoreFromHidden(hidden).allclose(prefix));
    }

    static CheckpointContents Contents(Dictionary<string, Tensor> tensors, ModelConfig config) => new()
    {
        Config = config, Tensors = tensors, Source = "test-checkpoint", Format = "hf-folder",
    };

    [Fact]
    public void FromCausalLMCopiesTheBackboneAndSeedsTheHead()
    {
        var config = TinyModels.LlamaConfig();
        var lm = TinyModels.RandomLM(config, seed: 8);
        var a = RewardModel.FromCausalLM(Contents(lm.StateDictForSaving(), config), seed: 1);
        var b = RewardModel.FromCausalLM(Contents(lm.StateDictForSaving(), config), seed: 1);
        var c = RewardModel.FromCausalLM(Contents(lm.StateDictForSaving(), config), seed: 2);
        var lmParams = lm.StateDictForSaving();
        foreach (var (name, p) in a.named_parameters().Where(p => p.name != "score.weight"))
            Assert.True(p.equal(lmParams[name]).all().item<bool>(), name);
        Assert.True(a.ScoreWeight.equal(b.ScoreWeight).all().item<bool>());
        Assert.False(a.ScoreWeight.equal(c.ScoreWeight).all().item<bool>());
        double std = a.ScoreWeight.std().item<float>();
        Assert.InRange(std, 0.5 / Math.Sqrt(32), 1.5 / Math.Sqrt(32));
    }

    [Fact]
    public void CheckpointWithoutScoreHeadIsRejectedWithAClearMessage()
    {
        var config = TinyModels.LlamaConfig();
        var lm = TinyModels.RandomLM(config);
        var error = Assert.Throws<PargsException>(() => RewardModel.FromCheckpoint(Contents(lm.StateDictForSaving(), config)));
        Assert.Contains("has no score head (score.weight)", error.Message);
        Assert.Contains("test-checkpoint", error.Message);

        var rm = RewardModel.Create(config, seed: 4);
        var loaded = RewardModel.FromCheckpoint(Contents(rm.StateDictForSaving(), config));
        Assert.True(loaded.ScoreWeight.equal(rm.ScoreWeight).all().item<bool>());
    }
}

public class RewardModelFolderTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "pargs-rm-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData("llama", "LlamaForSequenceClassification")]
    [InlineData("qwen2", "Qwen2ForSequenceClassification")]
    [InlineData("gpt2", "GPT2ForSequenceClassification")]
    public void SavesAHuggingFaceSequenceClassificationFolderThatLoadsBack(string family, string architecture)
    {
        var config = family switch { "llama" => TinyModels.LlamaConfig(), "qwen2" => TinyModels.Qwen2Config(), _ => TinyModels.Gpt2Config() };
        var model = RewardModel.Create(config, seed: 6);
        TinyModels.Randomize(model, 6);
        string folder = Path.Combine(dir, family);
        model.Save(folder, RewardObjective.Partial);

        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        Assert.Equal(architecture, json["architectures"]![0]!.GetValue<string>());
        Assert.Equal(1, json["num_labels"]!.GetValue<int>());
        Assert.Equal("partial", json["pargs_objective"]!.GetValue<string>());
        Assert.NotNull(json["pad_token_id"]);
        var tensors = Pargs.Checkpoints.Safetensors.Load(Path.Combine(folder, "model.safetensors"));
        Assert.Contains("score.weight", tensors.Keys);
        Assert.DoesNotContain(tensors.Keys, k => k.StartsWith("lm_head"));

        var loaded = RewardModel.Load(folder, requireTokenizer: false);
        Assert.Equal(RewardObjective.Partial, loaded.Objective);
        var ids = tensor(TinyModels.Tokens(6, config.VocabSize, 3).Select(i => (long)i).ToArray(), 1, 6);
        var valid = ones(1, 6, dtype: ScalarType.Bool);
        model.eval();
        using var _ = no_grad();
        Assert.True(model.PrefixRewards(ids, valid).equal(loaded.PrefixRewards(ids, valid)).all().item<bool>());
    }

    [Fact]
    public void LoadingABaseLanguageModelAsARewardModelFails()
    {
        var lm = TinyModels.RandomLM(TinyModels.LlamaConfig());
        string folder = Path.Combine(dir, "lm");
        Pargs.Checkpoints.HuggingFaceFolder.Save(folder, lm.Config, lm.Architecture, lm.StateDictForSaving());
        var error = Assert.Throws<PargsException>(() => RewardModel.Load(folder, requireTokenizer: false));
        Assert.Contains("no score head (score.weight)", error.Message);
    }
}
