using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Models.Families;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// Config fidelity (issue 14): a table of (model type, config.json field, value). Each honoured field gives the
/// logits an independent reference computes for that value (and they differ from the base config's); each refused
/// one is a PargsException naming field, value and model type; each irrelevant one leaves the logits unchanged.
/// Every honoured or refused field in a family's own table must have a row here.
/// </summary>
public class ConfigFidelityTests
{
    const int Vocab = 40, Length = 40;

    static JsonObject Base(string modelType) => modelType == "gpt2"
        ? new JsonObject
        {
            ["model_type"] = "gpt2", ["vocab_size"] = Vocab, ["n_embd"] = 32, ["n_layer"] = 2, ["n_head"] = 4,
            ["n_positions"] = 64, ["layer_norm_epsilon"] = 1e-5, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        }
        : new JsonObject
        {
            ["model_type"] = modelType, ["vocab_size"] = Vocab, ["hidden_size"] = 32, ["intermediate_size"] = 48,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 64,
            ["rms_norm_eps"] = 1e-5, ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
            ["sliding_window"] = null,
        } is var json && modelType == "qwen3" ? With(json, "head_dim", 8) : json;

    static JsonObject With(JsonObject json, string field, JsonNode? value)
    {
        json[field] = value;
        return json;
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

    /// <summary>Honoured fields whose effect is on the logits: (model type, field, value as JSON).</summary>
    public static TheoryData<string, string, string> HonouredOnLogits => new()
    {
        { "llama", "vocab_size", "48" }, { "llama", "hidden_size", "64" }, { "llama", "intermediate_size", "20" },
        { "llama", "num_hidden_layers", "3" }, { "llama", "num_attention_heads", "8" }, { "llama", "num_key_value_heads", "4" },
        { "llama", "head_dim", "16" }, { "qwen2", "head_dim", "4" },
        { "llama", "rope_theta", "500000" }, { "mistral", "rope_theta", "1000" }, { "llama", "rms_norm_eps", "0.5" },
        { "llama", "tie_word_embeddings", "true" }, { "llama", "attention_bias", "true" },
        { "mistral", "sliding_window", "8" }, { "mistral", "sliding_window", "1" },
        { "llama", "rope_scaling", """{"rope_type":"linear","factor":4.0}""" },
        { "llama", "rope_scaling", """{"type":"linear","factor":2.0}""" },
        { "llama", "rope_scaling", """{"rope_type":"dynamic","factor":2.0}""" },
        { "llama", "rope_scaling", """{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":16}""" },
        { "qwen2", "rope_scaling", """{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":16}""" },
        { "llama", "rope_scaling", """{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":16,"beta_fast":8,"beta_slow":2,"mscale":1.0,"mscale_all_dim":0.5}""" },
        { "llama", "rope_scaling", """{"rope_type":"yarn","factor":3.0,"attention_factor":1.3,"truncate":false}""" },
        { "llama", "rope_scaling", """{"rope_type":"longrope","short_factor":[1.0,1.5,2.0,3.0],"long_factor":[2.0,3.0,5.0,7.0],"original_max_position_embeddings":16}""" },
        { "llama", "rope_scaling", """{"rope_type":"longrope","short_factor":[1.0,1.5,2.0,3.0],"long_factor":[2.0,3.0,5.0,7.0],"original_max_position_embeddings":64,"factor":2.0}""" },
        { "llama", "rope_parameters", """{"rope_theta":500000.0,"rope_type":"default"}""" },
        { "mistral", "rope_parameters", """{"rope_theta":20000.0,"rope_type":"llama3","factor":4.0,"low_freq_factor":1.0,"high_freq_factor":2.0,"original_max_position_embeddings":32}""" },
        { "gpt2", "vocab_size", "48" }, { "gpt2", "n_embd", "64" }, { "gpt2", "n_layer", "1" }, { "gpt2", "n_head", "8" },
        { "gpt2", "n_inner", "20" }, { "gpt2", "n_positions", "48" }, { "gpt2", "layer_norm_epsilon", "0.5" },
        { "gpt2", "tie_word_embeddings", "false" },
        { "qwen3", "head_dim", "16" }, { "qwen3", "attention_bias", "true" }, { "qwen3", "rms_norm_eps", "0.5" },
        { "qwen3", "num_key_value_heads", "4" }, { "qwen3", "tie_word_embeddings", "true" },
        { "qwen3", "rope_scaling", """{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":16}""" },
    };

    [Theory, MemberData(nameof(HonouredOnLogits))]
    public void An_honoured_field_gives_the_references_logits(string modelType, string field, string valueJson)
    {
        var json = With(modelType, field, valueJson);
        var (config, logits, weights) = Run(json);
        var (_, baseLogits, _) = Run(Base(modelType));
        using var _ = no_grad();
        Tensor expected;
        if (modelType == "gpt2") expected = ReferenceForward.Gpt2(config, weights, Ids);
        else
        {
            var (inverse, attentionFactor) = ReferenceRope(json, config.HeadDim, Length);
            int? window = modelType == "mistral" && json["sliding_window"] is { } w ? w.GetValue<int>() : null;
            expected = ReferenceForward.Llama(config, weights, Ids, inverse, attentionFactor, window);
        }
        float diff = (expected - logits).abs().max().item<float>();
        Assert.True(diff < 1e-4f, $"{modelType} {field}={valueJson}: max |model − reference| = {diff}");
        bool changed = !logits.shape.SequenceEqual(baseLogits.shape) || (logits - baseLogits).abs().max().item<float>() > 1e-4f;
        // Dynamic NTK only departs from the default past max_position_embeddings, the longest context Pargs runs:
        // there the reference says "same as default", and so must the model.
        bool dynamic = valueJson.Contains("\"dynamic\"");
        Assert.True(changed != dynamic, $"{modelType} {field}={valueJson}: the logits {(changed ? "changed" : "did not change")}");
    }

    /// <summary>
    /// transformers' rotary frequencies and attention factor for the config, written out from modeling_rope_utils'
    /// definitions (independently of Pargs' RopeScaling), for a forward of <paramref name="sequenceLength"/> positions.
    /// </summary>
    static (double[]? Inverse, double AttentionFactor) ReferenceRope(JsonObject json, int dim, int sequenceLength)
    {
        var parameters = json["rope_parameters"] as JsonObject ?? json["rope_scaling"] as JsonObject;
        double theta = (json["rope_parameters"]?["rope_theta"] ?? json["rope_theta"])?.GetValue<double>() ?? 10000.0;
        string type = (parameters?["rope_type"] ?? parameters?["type"])?.GetValue<string>() ?? "default";
        double Get(string key, double fallback) => parameters?[key]?.GetValue<double>() ?? fallback;
        int maxPositions = json["max_position_embeddings"]!.GetValue<int>();
        var plain = new double[dim / 2];
        for (int i = 0; i < dim / 2; i++) plain[i] = Math.Pow(theta, -2.0 * i / dim);
        switch (type)
        {
            case "default":
                return (plain, 1.0);
            case "linear":
                return (plain.Select(f => f / Get("factor", 1)).ToArray(), 1.0);
            case "dynamic": // base grows only when sequenceLength > max_position_embeddings
                return (sequenceLength > maxPositions ? null : plain, 1.0);
            case "llama3":
            {
                double factor = Get("factor", 1), lowF = Get("low_freq_factor", 1), highF = Get("high_freq_factor", 4);
                double context = Get("original_max_position_embeddings", 8192);
                return (plain.Select(f =>
                {
                    double wave = 2 * Math.PI / f;
                    if (wave > context / lowF) return f / factor;
                    if (wave < context / highF) return f;
                    double s = (context / wave - lowF) / (highF - lowF);
                    return (1 - s) * f / factor + s * f;
                }).ToArray(), 1.0);
            }
            case "yarn":
            {
                double factor = Get("factor", 1), context = Get("original_max_position_embeddings", maxPositions);
                double mscale = Get("mscale", 0), mscaleAll = Get("mscale_all_dim", 0);
                double M(double m) => factor <= 1 ? 1 : 0.1 * m * Math.Log(factor) + 1;
                double attention = parameters!["attention_factor"] is { } a ? a.GetValue<double>()
                    : mscale != 0 && mscaleAll != 0 ? M(mscale) / M(mscaleAll) : M(1);
                double Dim(double rotations) => dim * Math.Log(context / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
                bool truncate = parameters["truncate"]?.GetValue<bool>() ?? true;
                double low = Dim(Get("beta_fast", 32)), high = Dim(Get("beta_slow", 1));
                if (truncate) (low, high) = (Math.Floor(low), Math.Ceiling(high));
                (low, high) = (Math.Max(low, 0), Math.Min(high, dim - 1));
                if (low == high) high += 0.001;
                return (plain.Select((f, i) =>
                {
                    double ramp = Math.Min(1, Math.Max(0, (i - low) / (high - low)));
                    return f / factor * ramp + f * (1 - ramp);
                }).ToArray(), attention);
            }
            case "longrope":
            {
                double context = Get("original_max_position_embeddings", maxPositions);
                double factor = Get("factor", maxPositions / context);
                var ext = (JsonArray)parameters![sequenceLength > context ? "long_factor" : "short_factor"]!;
                double attention = factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(context));
                return (plain.Select((f, i) => f / ext[i]!.GetValue<double>()).ToArray(), attention);
            }
            default:
                throw new ArgumentException(type);
        }
    }

    /// <summary>Refused: (model type, field, value as JSON).</summary>
    public static TheoryData<string, string, string> Refused => new()
    {
        { "llama", "hidden_act", "\"gelu\"" }, { "mistral", "hidden_act", "\"relu\"" }, { "llama", "mlp_bias", "true" },
        { "llama", "partial_rotary_factor", "0.5" }, { "qwen2", "quantization_config", """{"quant_method":"gptq"}""" },
        { "llama", "quantization_config", """{"quant_method":"awq"}""" }, { "mistral", "partial_rotary_factor", "0.25" },
        { "qwen2", "use_sliding_window", "true" }, { "qwen2", "layer_types", """["sliding_attention","full_attention"]""" },
        { "qwen2", "hidden_act", "\"gelu\"" }, { "qwen2", "partial_rotary_factor", "0.5" }, { "mistral", "quantization_config", "{}" },
        { "llama", "rope_scaling", """{"rope_type":"mrope","factor":2.0}""" },
        { "llama", "rope_scaling", """{"rope_type":"linear","factor":2.0,"mystery":1}""" },
        { "llama", "rope_parameters", """{"full_attention":{"rope_theta":10000.0,"rope_type":"default"}}""" },
        { "llama", "rope_parameters", """{"rope_theta":10000.0,"rope_type":"default","partial_rotary_factor":0.5}""" },
        { "gpt2", "activation_function", "\"relu\"" }, { "gpt2", "scale_attn_weights", "false" },
        { "gpt2", "scale_attn_by_inverse_layer_idx", "true" }, { "gpt2", "add_cross_attention", "true" },
        { "gpt2", "quantization_config", """{"quant_method":"gptq"}""" },
        { "qwen3", "hidden_act", "\"gelu\"" }, { "qwen3", "use_sliding_window", "true" },
        { "qwen3", "layer_types", """["full_attention","sliding_attention"]""" }, { "qwen3", "quantization_config", "{}" },
    };

    [Theory, MemberData(nameof(Refused))]
    public void A_refused_field_is_one_error_naming_field_value_and_model_type(string modelType, string field, string valueJson)
    {
        var e = Assert.Throws<PargsException>(() => ModelConfig.FromHuggingFaceJson(With(modelType, field, valueJson), "config.json"));
        Assert.Contains(field, e.Message);
        // A scalar is shown as given; inside an object the message names the offending key and its value.
        var value = JsonNode.Parse(valueJson)!;
        if (value is JsonObject { Count: > 0 } inner) Assert.Contains(inner.Select(p => p.Key), key => e.Message.Contains(key));
        else Assert.Contains(value.ToJsonString(), e.Message);
        Assert.Contains($"\"{modelType}\"", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    public static TheoryData<string> ModelTypes => new() { "llama", "mistral", "qwen2", "gpt2", "qwen3" };

    /// <summary>Every field a family's table calls irrelevant loads with an odd value and changes nothing.</summary>
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

    /// <summary>Each honoured or refused field in a family's table has a row in this test (fields that do not act on logits are below).</summary>
    [Theory, MemberData(nameof(ModelTypes))]
    public void Every_honoured_or_refused_field_is_tested(string modelType)
    {
        var tested = HonouredOnLogits.Concat(Refused).Select(r => ((string)r[0], (string)r[1]))
            .Concat(new[] { "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings", "max_position_embeddings", "n_positions" }.Select(f => (modelType, f)))
            .ToHashSet();
        var rowsOfFamily = ModelFamilies.ForModelType(modelType).ConfigFields(modelType).Where(f => f.Use != ConfigFieldUse.Irrelevant);
        foreach (var field in rowsOfFamily)
            Assert.True(tested.Contains((modelType, field.Name)) || (modelType != "gpt2" && tested.Contains(("llama", field.Name)) && field.Use == ConfigFieldUse.Honoured),
                $"{modelType}: config field \"{field.Name}\" ({field.Use}) has no row in the fidelity table");
    }

    [Theory]
    [InlineData("llama", "max_position_embeddings")]
    [InlineData("gpt2", "n_positions")]
    public void The_context_is_max_position_embeddings(string modelType, string field)
    {
        var config = ModelConfig.FromHuggingFaceJson(With(modelType, field, "41"), "config.json");
        Assert.Equal(41, config.MaxPositions);
        using var lm = TinyModels.RandomLM(config, seed: 9);
        using var _ = no_grad();
        using var session = new BatchSession(lm.Backbone, 1);
        session.Prefill([Ids.Select(i => (int)i).ToArray()]);
        session.Step(tensor(new long[] { 5 }));
        var e = Assert.Throws<PargsException>(() => session.Step(tensor(new long[] { 5 })));
        Assert.Contains("max_position_embeddings", e.Message);
    }

    [Fact]
    public void Qwen2_without_tie_word_embeddings_is_untied_as_in_transformers()
    {
        var json = Base("qwen2");
        json.Remove("tie_word_embeddings");
        var config = ModelConfig.FromHuggingFaceJson(json, "config.json");
        Assert.False(config.TieWordEmbeddings);
        Assert.Contains(ExpectedTensors.For(config, "Qwen2ForCausalLM"), t => t.Name == "lm_head.weight");
        Assert.True(config.AttentionBias); // Qwen2's q/k/v always carry biases
        var llama = Base("llama");
        llama.Remove("tie_word_embeddings");
        Assert.False(ModelConfig.FromHuggingFaceJson(llama, "config.json").TieWordEmbeddings);
        var gpt2 = Base("gpt2");
        Assert.True(ModelConfig.FromHuggingFaceJson(gpt2, "config.json").TieWordEmbeddings); // GPT2Config ties by default
    }

    [Theory]
    [InlineData("llama", "[128001, 128008, 128009]", new[] { 128001, 128008, 128009 })]
    [InlineData("qwen2", "[151645, 151643]", new[] { 151645, 151643 })]
    [InlineData("gpt2", "50256", new[] { 50256 })]
    [InlineData("mistral", "[]", new int[0])]
    public void Every_eos_token_id_is_kept_and_written_back(string modelType, string eosJson, int[] expected)
    {
        var json = With(modelType, "eos_token_id", eosJson);
        json["vocab_size"] = 152000;
        var config = ModelConfig.FromHuggingFaceJson(json, "config.json");
        Assert.Equal(expected, config.EosTokenIds);
        Assert.Equal(expected.Length > 0 ? expected[0] : null, config.EosTokenId);
        var again = ModelConfig.FromHuggingFaceJson(config.ToHuggingFaceJson(config.Family.CausalLMArchitecture(config)), "again");
        Assert.Equal(config, again);
    }

    [Fact]
    public void Model_type_defaults_are_transformers_own()
    {
        var minimal = new JsonObject { ["model_type"] = "mistral", ["vocab_size"] = 100, ["hidden_size"] = 128 };
        var mistral = ModelConfig.FromHuggingFaceJson(minimal, "config.json");
        Assert.Equal((8, 14336, 32, 131072, 4096, 10000.0, 1e-6), (mistral.NumKvHeads, mistral.IntermediateSize, mistral.NumLayers, mistral.MaxPositions, mistral.SlidingWindow!.Value, mistral.RopeTheta, mistral.NormEps));
        minimal["model_type"] = "qwen2";
        var qwen2 = ModelConfig.FromHuggingFaceJson(minimal, "config.json");
        Assert.Equal((32, 22016, 32768, (int?)null, false), (qwen2.NumKvHeads, qwen2.IntermediateSize, qwen2.MaxPositions, qwen2.SlidingWindow, qwen2.TieWordEmbeddings));
        minimal["model_type"] = "llama";
        var llama = ModelConfig.FromHuggingFaceJson(minimal, "config.json");
        Assert.Equal((32, 11008, 2048, false, false), (llama.NumKvHeads, llama.IntermediateSize, llama.MaxPositions, llama.AttentionBias, llama.TieWordEmbeddings));
        minimal["model_type"] = "qwen3";
        var qwen3 = ModelConfig.FromHuggingFaceJson(minimal, "config.json");
        Assert.Equal((128, 32, 32768, true, false), (qwen3.HeadDim, qwen3.NumKvHeads, qwen3.MaxPositions, qwen3.QkNorm, qwen3.TieWordEmbeddings));
    }

    public static TheoryData<string, string, string> CachedCases => new()
    {
        { "mistral", "sliding_window", "6" },
        { "llama", "rope_scaling", """{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":16}""" },
        { "llama", "rope_scaling", """{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":16}""" },
        { "llama", "rope_scaling", """{"rope_type":"longrope","short_factor":[1.0,1.5,2.0,3.0],"long_factor":[2.0,3.0,5.0,7.0],"original_max_position_embeddings":16}""" },
        { "llama", "head_dim", "16" },
        { "qwen3", "head_dim", "16" },
        { "llama", "attention_bias", "true" },
    };

    /// <summary>
    /// Decoding over the KV cache (prefill, then one token per step) on the CPU kernel and on the torch ops give the
    /// same logits; where the frequencies do not change with the length, both equal the full forward too.
    /// </summary>
    [Theory, MemberData(nameof(CachedCases))]
    public void Cached_decoding_on_kernel_and_torch_agree_with_the_full_forward(string modelType, string field, string valueJson)
    {
        var config = ModelConfig.FromHuggingFaceJson(With(modelType, field, valueJson), "config.json");
        using var lm = TinyModels.RandomLM(config, seed: 9);
        using var _ = no_grad();
        var full = lm.Logits(tensor(Ids).view(1, -1))[0];
        List<Tensor> Decode(bool kernel)
        {
            using var off = kernel ? null : CpuKernels.Suppress();
            using var session = new BatchSession(lm.Backbone, 1, initialCapacity: 4);
            var steps = new List<Tensor> { lm.LogitsFromHidden(session.Prefill([Ids.Take(5).Select(i => (int)i).ToArray()]))[0] };
            for (int t = 5; t < 30; t++) steps.Add(lm.LogitsFromHidden(session.Step(tensor(new[] { Ids[t] })))[0]);
            return steps;
        }
        long before = CpuKernels.ForwardsOnThisThread;
        var fast = Decode(kernel: true);
        Assert.True(CpuKernels.ForwardsOnThisThread - before >= 26, "the decode kernel did not run the prefill and every step");
        var reference = Decode(kernel: false);
        bool lengthDependent = valueJson.Contains("longrope");
        for (int i = 0; i < fast.Count; i++)
        {
            Assert.True((fast[i] - reference[i]).abs().max().item<float>() < 1e-4f, $"step {i}: kernel and torch differ");
            if (!lengthDependent)
                Assert.True((reference[i] - full[4 + i]).abs().max().item<float>() < 1e-4f, $"step {i}: cached and full forward differ");
        }
    }

    public static TheoryData<string, string, string> Malformed => new()
    {
        { "llama", "head_dim", "-4" }, { "llama", "head_dim", "\"wide\"" }, { "mistral", "sliding_window", "0" },
        { "llama", "num_attention_heads", "0" }, { "llama", "hidden_size", "1000000000" }, { "qwen3", "head_dim", "100000000" },
        { "llama", "rope_scaling", "5" }, { "llama", "rope_scaling", """{"rope_type":"linear","factor":"x"}""" },
        { "llama", "rope_scaling", """{"rope_type":"linear","factor":0}""" }, { "llama", "rope_scaling", """{"factor":2.0}""" },
        { "llama", "rope_scaling", """{"rope_type":"yarn","factor":-2.0}""" },
        { "llama", "rope_scaling", """{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0}""" },
        { "llama", "rope_scaling", """{"rope_type":"llama3","factor":8.0,"low_freq_factor":4.0,"high_freq_factor":1.0,"original_max_position_embeddings":16}""" },
        { "llama", "rope_scaling", """{"rope_type":"longrope","short_factor":[1.0,1.0],"long_factor":[1.0,1.0]}""" },
        { "llama", "rope_scaling", """{"rope_type":"longrope","short_factor":[1.0,1.0,0.0,1.0],"long_factor":[1.0,1.0,1.0,1.0]}""" },
        { "llama", "rope_scaling", """{"rope_type":"longrope","short_factor":"many","long_factor":[1.0]}""" },
        { "llama", "rope_scaling", """{"rope_type":"yarn","factor":2.0,"original_max_position_embeddings":-5}""" },
        { "llama", "rope_parameters", "\"default\"" }, { "llama", "rope_theta", "-1" },
        { "llama", "eos_token_id", """["a"]""" }, { "gpt2", "eos_token_id", "[null]" }, { "llama", "bos_token_id", "1.5" },
        { "qwen2", "layer_types", "[1]" }, { "llama", "mlp_bias", "\"yes\"" },
    };

    /// <summary>Malformed values are one PargsException naming the field, never another exception type.</summary>
    [Theory, MemberData(nameof(Malformed))]
    public void A_malformed_value_is_a_pargs_error_naming_the_field(string modelType, string field, string valueJson)
    {
        var e = Assert.Throws<PargsException>(() => ModelConfig.FromHuggingFaceJson(With(modelType, field, valueJson), "config.json"));
        Assert.StartsWith("config.json", e.Message);
        Assert.True(e.Message.Contains(field) || e.Message.Contains(field.Replace("_", " ")) || field is "hidden_size" or "head_dim" or "num_attention_heads",
            $"{field}: {e.Message}");
    }
}
