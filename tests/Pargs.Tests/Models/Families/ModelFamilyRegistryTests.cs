using Pargs.Checkpoints;
using Pargs.Decoding;
using Pargs.Models;
using Pargs.Models.Families;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// The family registry: a family defined only in the tests (<see cref="MeanAttentionFamily"/>) is registered
/// with one line and then saved, loaded, decoded and scored through the library's ordinary paths; and every
/// built-in family's tensor declaration is exactly what its modules register.
/// </summary>
public class ModelFamilyRegistryTests
{
    static ModelConfig MeanConfig() => new ModelConfig
    {
        ModelType = MeanAttentionFamily.ModelType, VocabSize = 20, HiddenSize = 8, IntermediateSize = 8, NumLayers = 2,
        NumHeads = 2, NumKvHeads = 2, MaxPositions = 64, TieWordEmbeddings = true, BosTokenId = 1, EosTokenId = 2,
        Extras = new MeanAttentionSettings(0.5),
    };

    /// <summary>The test family's forward written out position by position: explicit softmax over the earlier tokens.</summary>
    static Tensor ReferenceHidden(ModelConfig c, IReadOnlyDictionary<string, Tensor> w, long[] ids)
    {
        int h = c.NumHeads, d = c.HeadDim, n = ids.Length;
        var x = w["body.tokens.weight"].index_select(0, tensor(ids)); // [n, width]
        for (int layer = 0; layer < c.NumLayers; layer++)
        {
            var heads = x.view(n, h, d);
            var rows = new List<Tensor>();
            for (int t = 0; t < n; t++)
            {
                var outHeads = new List<Tensor>();
                for (int head = 0; head < h; head++)
                {
                    var q = heads[t, head];                                   // [d]
                    var keys = heads.narrow(0, 0, t + 1).select(1, head);     // [t+1, d]
                    var scores = keys.matmul(q).DividedBy(Math.Sqrt(d));
                    var p = scores.exp() / scores.exp().sum();
                    outHeads.Add(p.matmul(keys));
                }
                rows.Add(cat(outHeads.ToArray(), 0));
            }
            x = x.Plus(stack(rows.ToArray()));
            x = x.Plus(x.matmul(w[$"body.layers.{layer}.weight"].t()).Plus(w[$"body.layers.{layer}.bias"]).tanh().Times(0.5));
        }
        return x;
    }

    [Fact]
    public void A_family_registered_in_the_tests_saves_loads_decodes_and_scores_through_the_normal_paths()
    {
        MeanAttentionFamily.EnsureRegistered();
        using var dir = new TempDir();
        var config = MeanConfig().Validate("test");
        using var original = TinyModels.RandomLM(config, seed: 21);
        Assert.Equal("MeanAttentionForCausalLM", original.Architecture);
        string folder = dir.File("lm");
        HuggingFaceFolder.Save(folder, config, original.Architecture, original.StateDictForSaving());

        using var contents = CheckpointLoader.Load(folder);
        Assert.Equal(config, contents.Config); // the family's own setting (residual_scale) round-trips too
        Assert.Equal("MeanAttentionForCausalLM", contents.Architecture);
        using var lm = CausalLM.FromCheckpoint(contents);
        lm.Tokenizer = new TestCharTokenizer(config.VocabSize);

        using var _ = no_grad();
        long[] ids = [1, 5, 9, 3, 14, 7];
        var weights = lm.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var expected = ReferenceHidden(config, weights, ids).matmul(weights["body.tokens.weight"].t());
        var logits = lm.Logits(tensor(ids).view(1, -1))[0];
        Assert.True((expected - logits).abs().max().item<float>() < 1e-5f, "the loaded model differs from the written-out forward");

        // Cached decoding (BatchSession: prefill, then one token per step) equals the full forward.
        using (var session = new BatchSession(lm.Backbone, 1, initialCapacity: 2))
        {
            var last = lm.LogitsFromHidden(session.Prefill([ids.Take(3).Select(i => (int)i).ToArray()]));
            Assert.True((last[0] - logits[2]).abs().max().item<float>() < 1e-5f);
            for (int t = 3; t < ids.Length; t++)
            {
                var step = lm.LogitsFromHidden(session.Step(tensor(new[] { ids[t] })));
                Assert.True((step[0] - logits[t]).abs().max().item<float>() < 1e-5f, $"cached step {t}");
            }
        }

        // Text generation: the cached decoder and the cache-free oracle choose the same greedy tokens.
        var options = new DecodingOptions { Method = new Pargs.Decoding.Methods.GreedyOptions(), MaxNewTokens = 8, StopAtEos = false };
        var fast = TextGenerator.Generate(lm, null, ["abc", "d"], options);
        var naive = TextGenerator.Generate(lm, null, ["abc", "d"], options with { Engine = DecodingEngine.Naive });
        Assert.Equal(naive.Select(r => r.TokenIds), fast.Select(r => r.TokenIds));
        Assert.All(fast, r => Assert.Equal(8, r.TokenIds.Length));

        // As a reward model: saved and loaded as …ForSequenceClassification, same rewards.
        var rm = TinyModels.RandomRM(config, seed: 4);
        Assert.Equal("MeanAttentionForSequenceClassification", rm.Architecture);
        rm.Save(dir.File("rm"));
        using var loadedRm = RewardModel.Load(dir.File("rm"), requireTokenizer: false);
        var batch = tensor(ids).view(1, -1);
        var valid = ones(1, ids.Length, dtype: ScalarType.Bool);
        Assert.True((rm.PrefixRewards(batch, valid) - loadedRm.PrefixRewards(batch, valid)).abs().max().item<float>() < 1e-6f);
    }

    [Fact]
    public void An_unknown_model_type_is_one_error_listing_the_registered_ones()
    {
        var json = new System.Text.Json.Nodes.JsonObject { ["model_type"] = "bert", ["hidden_size"] = 8 };
        var e = Assert.Throws<PargsException>(() => ModelConfig.FromHuggingFaceJson(json, "cfg.json"));
        Assert.Contains("unknown model_type \"bert\"", e.Message);
        foreach (var type in new[] { "gpt2", "llama", "mistral", "qwen2", "qwen3" }) Assert.Contains(type, e.Message);
    }

    [Fact]
    public void Families_are_found_by_model_type_and_by_architecture()
    {
        Assert.Same(ModelFamilies.ForModelType("mistral"), ModelFamilies.ForArchitecture("Qwen2ForSequenceClassification"));
        Assert.Equal("gpt2", ModelFamilies.ForArchitecture("GPT2LMHeadModel")!.Name);
        Assert.Null(ModelFamilies.ForArchitecture("BertForMaskedLM"));
        Assert.Equal("MistralForCausalLM", ModelFamilies.ForModelType("mistral").CausalLMArchitecture(TinyModels.LlamaConfig() with { ModelType = "mistral" }));
    }

    public static TheoryData<string, bool> Declarations => new()
    {
        { "llama", false }, { "llama", true }, { "qwen2", false }, { "qwen2", true }, { "gpt2", false }, { "gpt2", true },
        { "qwen3", false }, { "qwen3", true }, { "llama-bias", false },
    };

    /// <summary>The declaration the loader checks and the kernel reads is exactly what the modules hold: names and shapes.</summary>
    [Theory, MemberData(nameof(Declarations))]
    public void The_declared_tensors_are_exactly_the_modules_parameters(string kind, bool rewardModel)
    {
        var config = kind switch
        {
            "llama" => TinyModels.LlamaConfig(),
            "llama-bias" => TinyModels.LlamaConfig() with { AttentionBias = true, AttentionOutputBias = true },
            "qwen2" => TinyModels.Qwen2Config(),
            "qwen3" => TinyModels.LlamaConfig() with { ModelType = "qwen3", QkNorm = true, HeadDim = 16, AttentionBias = true, AttentionOutputBias = true },
            _ => TinyModels.Gpt2Config(),
        };
        config.Validate("test");
        using TorchSharp.torch.nn.Module model = rewardModel ? RewardModel.Create(config) : new CausalLM(config);
        var family = config.Family;
        string architecture = rewardModel ? family.SequenceClassificationArchitecture(config) : family.CausalLMArchitecture(config);
        var declared = ExpectedTensors.For(config, architecture).ToDictionary(t => t.Name, t => t.Shape);
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(declared.Keys.Order(), actual.Keys.Order());
        foreach (var (name, shape) in declared)
            Assert.True(shape.Zip(actual[name]).All(p => p.First < 0 || p.First == p.Second), $"{name}: declared [{string.Join(", ", shape)}], module [{string.Join(", ", actual[name])}]");
    }

    public static TheoryData<string> RoundTrips => new() { "qwen3", "mistral-window", "llama-llama3", "llama-bias-eos" };

    /// <summary>What the family readers honour survives save → load: equal config (rope scaling, window, EOS list…), identical logits.</summary>
    [Theory, MemberData(nameof(RoundTrips))]
    public void A_saved_folder_loads_back_to_an_equal_config_and_identical_logits(string kind)
    {
        var config = kind switch
        {
            "qwen3" => TinyModels.LlamaConfig() with { ModelType = "qwen3", QkNorm = true, HeadDim = 16, AttentionBias = true, AttentionOutputBias = true },
            "mistral-window" => TinyModels.LlamaConfig() with { ModelType = "mistral", SlidingWindow = 3 },
            "llama-llama3" => TinyModels.LlamaConfig() with
            {
                RopeScaling = new RopeScaling { Type = "llama3", Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositions = 32 },
            },
            _ => TinyModels.LlamaConfig() with { AttentionBias = true, AttentionOutputBias = true, MoreEosTokenIds = new ValueList<int>([7, 9]) },
        };
        using var dir = new TempDir();
        using var original = TinyModels.RandomLM(config.Validate("test"), seed: 3);
        HuggingFaceFolder.Save(dir.File("m"), config, original.Architecture, original.StateDictForSaving());
        using var contents = CheckpointLoader.Load(dir.File("m"));
        Assert.Equal(config, contents.Config);
        using var loaded = CausalLM.FromCheckpoint(contents);
        using var _ = no_grad();
        var ids = tensor(TinyModels.Tokens(12, config.VocabSize, seed: 2).Select(i => (long)i).ToArray()).view(1, -1);
        Assert.True(original.Logits(ids).eq(loaded.Logits(ids)).all().item<bool>());
    }
}
