using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Models.Families;
using Pargs.Models.Families.Gemma;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// Gemma-2 and Gemma-3 text (issue 14): every field of the family's config table is honoured (Pargs' logits equal
/// the written reference <see cref="GemmaReferenceForward"/>'s for that value, and differ from the base config's),
/// refused with one line naming field, value and model type, or irrelevant (nothing changes); cached decoding equals
/// the full forward past the sliding window; the declared tensors are the modules'; save → load is exact.
/// </summary>
public class GemmaFamilyTests
{
    const int Vocab = 40, Length = 24;

    /// <summary>Small, with soft-caps that bite and a window shorter than the sequence.</summary>
    static JsonObject Base(string modelType)
    {
        var json = new JsonObject
        {
            ["model_type"] = modelType, ["vocab_size"] = Vocab, ["hidden_size"] = 32, ["intermediate_size"] = 48,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["head_dim"] = 8,
            ["max_position_embeddings"] = 64, ["rms_norm_eps"] = 1e-6, ["query_pre_attn_scalar"] = 8, ["sliding_window"] = 4,
            ["final_logit_softcapping"] = 3.0, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 0,
        };
        if (modelType == GemmaFamily.Gemma2) json["attn_logit_softcapping"] = 2.0;
        else json["sliding_window_pattern"] = 2;
        return JsonNode.Parse(json.ToJsonString())!.AsObject(); // values as a file holds them
    }

    static JsonObject With(string modelType, string field, string valueJson)
    {
        var json = Base(modelType);
        json[field] = JsonNode.Parse(valueJson);
        return json;
    }

    static readonly long[] Ids = TinyModels.Tokens(Length, Vocab, seed: 8).Select(i => (long)i).ToArray();

    static (ModelConfig Config, Tensor Logits, Dictionary<string, Tensor> Weights) Run(JsonObject json)
    {
        var config = ModelConfig.FromHuggingFaceJson(json, "config.json");
        var lm = TinyModels.RandomLM(config, seed: 9);
        using var _ = no_grad();
        var logits = lm.Logits(tensor(Ids).view(1, -1))[0];
        // Copies, not the parameters: once lm is unreachable its finalizer disposes them (a flaky "empty handle" when a GC ran mid-test).
        return (config, logits, lm.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone()));
    }

    public static TheoryData<string, string, string> Honoured
    {
        get
        {
            var rows = new TheoryData<string, string, string>();
            foreach (var type in new[] { GemmaFamily.Gemma2, GemmaFamily.Gemma3Text })
            {
                rows.Add(type, "vocab_size", "48"); rows.Add(type, "hidden_size", "64"); rows.Add(type, "intermediate_size", "20");
                rows.Add(type, "num_hidden_layers", "3"); rows.Add(type, "num_attention_heads", "8"); rows.Add(type, "num_key_value_heads", "4");
                rows.Add(type, "head_dim", "16"); rows.Add(type, "rms_norm_eps", "0.5"); rows.Add(type, "tie_word_embeddings", "false");
                rows.Add(type, "attention_bias", "true"); rows.Add(type, "query_pre_attn_scalar", "50");
                rows.Add(type, "attn_logit_softcapping", "0.5"); rows.Add(type, "final_logit_softcapping", "null");
                rows.Add(type, "final_logit_softcapping", "1.5"); rows.Add(type, "sliding_window", "2");
                rows.Add(type, "layer_types", """["full_attention","sliding_attention"]""");
                rows.Add(type, "rope_theta", "100"); rows.Add(type, "rope_scaling", """{"rope_type":"linear","factor":4.0}""");
                rows.Add(type, "rope_parameters", """{"rope_type":"linear","factor":3.0,"rope_theta":500.0}""");
                rows.Add(type, "max_position_embeddings", "40");
            }
            rows.Add(GemmaFamily.Gemma2, "attn_logit_softcapping", "null");
            rows.Add(GemmaFamily.Gemma3Text, "rope_local_base_freq", "50");
            rows.Add(GemmaFamily.Gemma3Text, "sliding_window_pattern", "1");
            rows.Add(GemmaFamily.Gemma3Text, "rope_parameters",
                """{"full_attention":{"rope_type":"linear","factor":2.0,"rope_theta":100000.0},"sliding_attention":{"rope_type":"default","rope_theta":60.0}}""");
            return rows;
        }
    }

    [Theory, MemberData(nameof(Honoured))]
    public void An_honoured_field_gives_the_references_logits(string modelType, string field, string valueJson)
    {
        var json = With(modelType, field, valueJson);
        var (config, logits, weights) = Run(json);
        var (_, baseLogits, _) = Run(Base(modelType));
        using var _ = no_grad();
        var expected = GemmaReferenceForward.Logits(json, weights, Ids);
        float diff = (expected - logits).abs().max().item<float>();
        Assert.True(diff < 1e-4f, $"{modelType} {field}={valueJson}: max |model − reference| = {diff}");
        bool changed = !logits.shape.SequenceEqual(baseLogits.shape) || (logits - baseLogits).abs().max().item<float>() > 1e-4f;
        // max_position_embeddings changes the context Pargs allows, not the logits within it.
        Assert.True(changed != (field == "max_position_embeddings"), $"{modelType} {field}={valueJson}: the logits {(changed ? "changed" : "did not change")}");
        if (field == "max_position_embeddings") Assert.Equal(40, config.MaxPositions);
    }

    public static TheoryData<string, string, string> Refused => new()
    {
        { "gemma2", "hidden_activation", "\"gelu\"" }, { "gemma3_text", "hidden_activation", "\"silu\"" },
        { "gemma2", "quantization_config", """{"quant_method":"gptq"}""" }, { "gemma3_text", "quantization_config", "{}" },
        { "gemma3_text", "use_bidirectional_attention", "true" },
        { "gemma2", "layer_types", """["sliding_attention","chunked_attention"]""" },
        { "gemma3_text", "sliding_window", "null" }, { "gemma2", "sliding_window", "null" },
        { "gemma3_text", "rope_parameters", """{"full_attention":{"rope_type":"default"},"chunked_attention":{"rope_type":"default"}}""" },
        { "gemma3", "text_config", """{"model_type":"gemma3_text"}""" }, { "gemma3", "vision_config", """{"model_type":"siglip_vision_model"}""" },
    };

    [Theory, MemberData(nameof(Refused))]
    public void A_refused_field_is_one_error_naming_field_value_and_model_type(string modelType, string field, string valueJson)
    {
        var e = Assert.Throws<PargsException>(() => ModelConfig.FromHuggingFaceJson(With(modelType, field, valueJson), "config.json"));
        Assert.Contains($"\"{modelType}\"", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith("config.json", e.Message);
        if (modelType == "gemma3") Assert.Contains("multimodal", e.Message);
        else
        {
            Assert.Contains(field, e.Message);
            var value = JsonNode.Parse(valueJson);
            if (value is JsonObject { Count: > 0 } inner) Assert.Contains(inner.Select(p => p.Key), key => e.Message.Contains(key));
            else if (value is not JsonObject) Assert.Contains(value?.ToJsonString() ?? "null", e.Message);
        }
    }

    public static TheoryData<string> ModelTypes => new() { GemmaFamily.Gemma2, GemmaFamily.Gemma3Text };

    [Theory, MemberData(nameof(ModelTypes))]
    public void Irrelevant_fields_change_nothing(string modelType)
    {
        var (_, baseLogits, _) = Run(Base(modelType));
        foreach (var field in ModelFamilies.ForModelType(modelType).ConfigFields(modelType).Where(f => f.Use == ConfigFieldUse.Irrelevant))
        {
            var (_, logits, _) = Run(With(modelType, field.Name, "0.37"));
            Assert.True(logits.eq(baseLogits).all().item<bool>(), $"{modelType}: {field.Name} changed the logits");
        }
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3_text")]
    [InlineData("gemma3")]
    public void Every_honoured_or_refused_field_has_a_row(string modelType)
    {
        var tested = Honoured.Concat(Refused).Select(r => ((string)r[0], (string)r[1]))
            .Concat(new[] { "bos_token_id", "eos_token_id", "pad_token_id" }.Select(f => (modelType, f))).ToHashSet();
        foreach (var field in ModelFamilies.ForModelType(modelType).ConfigFields(modelType).Where(f => f.Use != ConfigFieldUse.Irrelevant))
            Assert.True(tested.Contains((modelType, field.Name)), $"{modelType}: config field \"{field.Name}\" ({field.Use}) has no row");
    }

    [Fact]
    public void Token_ids_and_model_type_defaults_are_transformers_own()
    {
        var minimal = new JsonObject { ["model_type"] = "gemma2", ["vocab_size"] = 100, ["num_hidden_layers"] = 3 };
        var gemma2 = ModelConfig.FromHuggingFaceJson(minimal, "config.json");
        var g2 = GemmaSettings.Of(gemma2);
        Assert.Equal((2304, 9216, 8, 4, 256, 8192, 10000.0, 1e-6, true, 4096), (gemma2.HiddenSize, gemma2.IntermediateSize, gemma2.NumHeads, gemma2.NumKvHeads, gemma2.HeadDim, gemma2.MaxPositions, gemma2.RopeTheta, gemma2.NormEps, gemma2.TieWordEmbeddings, gemma2.SlidingWindow!.Value));
        Assert.Equal((256.0, (double?)50.0, (double?)30.0), (g2.QueryPreAttnScalar, g2.AttnLogitSoftcapping, g2.FinalLogitSoftcapping));
        Assert.Equal([true, false, true], g2.SlidingLayers);
        Assert.Equal(((int?)2, (int?)1, (int?)0), (gemma2.BosTokenId, gemma2.EosTokenId, gemma2.PadTokenId));
        minimal["model_type"] = "gemma3_text";
        minimal["num_hidden_layers"] = 7;
        minimal["eos_token_id"] = new JsonArray(1, 106);
        minimal["vocab_size"] = 300;
        var gemma3 = ModelConfig.FromHuggingFaceJson(minimal, "config.json");
        var g3 = GemmaSettings.Of(gemma3);
        Assert.Equal((131072, 1_000_000.0, 10000.0, true), (gemma3.MaxPositions, gemma3.RopeTheta, g3.LocalRopeTheta, gemma3.QkNorm));
        Assert.Equal(((double?)null, (double?)null), (g3.AttnLogitSoftcapping, g3.FinalLogitSoftcapping));
        Assert.Equal([true, true, true, true, true, false, true], g3.SlidingLayers); // every sixth layer global
        Assert.Equal([1, 106], gemma3.EosTokenIds);
    }

    public static TheoryData<string, string, string> CachedCases => new()
    {
        { "gemma2", "sliding_window", "3" },
        { "gemma3_text", "sliding_window", "3" },
        { "gemma3_text", "rope_parameters", """{"full_attention":{"rope_type":"linear","factor":2.0,"rope_theta":100000.0},"sliding_attention":{"rope_type":"default","rope_theta":60.0}}""" },
    };

    /// <summary>Prefill then one token per step through the KV cache (on the CPU decode kernel, GemmaDecodeKernel) equals the full forward, far past the window.</summary>
    [Theory, MemberData(nameof(CachedCases))]
    public void Cached_decoding_equals_the_full_forward_past_the_window(string modelType, string field, string valueJson)
    {
        var config = ModelConfig.FromHuggingFaceJson(With(modelType, field, valueJson), "config.json");
        using (var model = new GemmaModel(config)) Assert.NotNull(config.Family.CreateDecodeKernel(model));
        using var lm = TinyModels.RandomLM(config, seed: 9);
        using var _ = no_grad();
        var full = lm.Logits(tensor(Ids).view(1, -1))[0];
        using var session = new BatchSession(lm.Backbone, 1, initialCapacity: 4);
        var steps = new List<Tensor> { lm.LogitsFromHidden(session.Prefill([Ids.Take(5).Select(i => (int)i).ToArray()]))[0] };
        for (int t = 5; t < Length; t++) steps.Add(lm.LogitsFromHidden(session.Step(tensor(new[] { Ids[t] })))[0]);
        for (int i = 0; i < steps.Count; i++)
            Assert.True((steps[i] - full[4 + i]).abs().max().item<float>() < 1e-4f, $"step {i}: cached and full forward differ");
    }

    public static TheoryData<string, bool> Declarations => new()
    {
        { "gemma2", false }, { "gemma2", true }, { "gemma3_text", false }, { "gemma3_text", true },
    };

    [Theory, MemberData(nameof(Declarations))]
    public void The_declared_tensors_are_exactly_the_modules_parameters(string modelType, bool rewardModel)
    {
        var config = ModelConfig.FromHuggingFaceJson(With(modelType, "attention_bias", "true"), "config.json");
        using nn.Module model = rewardModel ? RewardModel.Create(config) : new CausalLM(config);
        string architecture = rewardModel ? config.Family.SequenceClassificationArchitecture(config) : config.Family.CausalLMArchitecture(config);
        var declared = ExpectedTensors.For(config, architecture).ToDictionary(t => t.Name, t => t.Shape);
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(declared.Keys.Order(), actual.Keys.Order());
        foreach (var (name, shape) in declared)
            Assert.True(shape.Zip(actual[name]).All(p => p.First < 0 || p.First == p.Second), $"{name}: declared [{string.Join(", ", shape)}], module [{string.Join(", ", actual[name])}]");
    }

    public static TheoryData<string, string, string> RoundTrips => new()
    {
        { "gemma2", "tie_word_embeddings", "false" },
        { "gemma3_text", "layer_types", """["full_attention","sliding_attention"]""" },
        { "gemma3_text", "rope_parameters", """{"full_attention":{"rope_type":"linear","factor":2.0,"rope_theta":100000.0},"sliding_attention":{"rope_type":"linear","factor":3.0,"rope_theta":60.0}}""" },
    };

    /// <summary>A saved folder (real safetensors + config.json) loads back to an equal config and identical logits.</summary>
    [Theory, MemberData(nameof(RoundTrips))]
    public void A_saved_folder_loads_back_to_an_equal_config_and_identical_logits(string modelType, string field, string valueJson)
    {
        var config = ModelConfig.FromHuggingFaceJson(With(modelType, field, valueJson), "config.json");
        using var dir = new TempDir();
        using var original = TinyModels.RandomLM(config, seed: 3);
        HuggingFaceFolder.Save(dir.File("m"), config, original.Architecture, original.StateDictForSaving());
        using var contents = CheckpointLoader.Load(dir.File("m"));
        Assert.Equal(config, contents.Config);
        Assert.Equal(original.Architecture, contents.Architecture);
        using var loaded = CausalLM.FromCheckpoint(contents);
        using var _ = no_grad();
        var ids = tensor(Ids).view(1, -1);
        Assert.True(original.Logits(ids).eq(loaded.Logits(ids)).all().item<bool>());
    }

    [Fact]
    public void The_reward_model_reads_the_score_head_without_the_final_soft_cap()
    {
        var config = ModelConfig.FromHuggingFaceJson(With("gemma2", "final_logit_softcapping", "0.01"), "config.json");
        using var rm = TinyModels.RandomRM(config, seed: 4, headScale: 50f);
        using var _ = no_grad();
        var rewards = rm.PrefixRewards(tensor(Ids).view(1, -1), ones(1, Length, dtype: ScalarType.Bool));
        Assert.True(rewards.abs().max().item<float>() > 0.05f, "the score head's output was soft-capped like the LM head's");
        Assert.Equal("Gemma2ForSequenceClassification", rm.Architecture);
    }
}
