using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Decoding;
using Pargs.Models;
using Pargs.Models.Families;
using Pargs.Models.Families.GptNeoX;
using Pargs.Models.Families.Phi3;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// The Phi-3 and GPT-NeoX families (issue 14), the same way <see cref="ConfigFidelityTests"/> checks the others: a
/// table of (model type, config.json field, value [, the fields it needs beside it]); each honoured row gives the
/// logits of the written reference (<see cref="Phi3GptNeoXReference"/>, with rotary frequencies computed here from
/// transformers' definitions) and differs from the base config's; each refused row is one error naming field, value
/// and model type; irrelevant fields change nothing; and every honoured or refused field of the families' tables has
/// a row. Then: cached decoding equals the full forward, the declared tensors are the modules', saved folders load
/// back identically under transformers' names.
/// </summary>
public class Phi3GptNeoXFamilyTests
{
    const int Vocab = 40, Length = 40;
    static readonly long[] Ids = TinyModels.Tokens(Length, Vocab, seed: 8).Select(i => (long)i).ToArray();

    static JsonObject Base(string modelType) => modelType == "phi3"
        ? new JsonObject
        {
            ["model_type"] = "phi3", ["vocab_size"] = Vocab, ["hidden_size"] = 32, ["intermediate_size"] = 48,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 64,
            ["rms_norm_eps"] = 1e-5, ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 2,
            ["sliding_window"] = null,
        }
        : new JsonObject
        {
            ["model_type"] = "gpt_neox", ["vocab_size"] = Vocab, ["hidden_size"] = 32, ["intermediate_size"] = 64,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["max_position_embeddings"] = 64, ["layer_norm_eps"] = 1e-5,
            ["rotary_pct"] = 0.5, ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        };

    static JsonObject With(string modelType, string field, string valueJson, string besideJson = "{}")
    {
        var json = Base(modelType);
        foreach (var (key, value) in JsonNode.Parse(besideJson)!.AsObject()) json[key] = value?.DeepClone();
        json[field] = JsonNode.Parse(valueJson);
        return json;
    }

    static (ModelConfig Config, Tensor Logits, Dictionary<string, Tensor> Weights) Run(JsonObject json)
    {
        var config = ModelConfig.FromHuggingFaceJson(json, "config.json");
        var lm = TinyModels.RandomLM(config, seed: 9);
        using var _ = no_grad();
        var logits = lm.Logits(tensor(Ids).view(1, -1))[0];
        // Copies, not the parameters: once lm is unreachable its finalizer disposes them (a flaky "empty handle" when a GC ran mid-test).
        return (config, logits, lm.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone()));
    }

    static double? Number(JsonNode? node) => node is null ? null : double.Parse(node.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>transformers' rotary for the config, written from its definitions: (rotated dims, inverse frequencies, cos/sin factor).</summary>
    static (int Dims, double[] Inverse, double AttentionFactor) ReferenceRotary(JsonObject json, string modelType)
    {
        int headDim = json["hidden_size"]!.GetValue<int>() / json["num_attention_heads"]!.GetValue<int>();
        var parameters = json["rope_parameters"] as JsonObject;
        double partial = modelType == "phi3"
            ? Number(parameters?["partial_rotary_factor"]) ?? Number(json["partial_rotary_factor"]) ?? 1.0
            : Number(parameters?["partial_rotary_factor"]) ?? Number(json["rotary_pct"]) ?? 0.25;
        int dims = (int)(headDim * partial);
        double theta = Number(parameters?["rope_theta"]) ?? Number(json["rope_theta"]) ?? (modelType == "gpt_neox" ? Number(json["rotary_emb_base"]) : null) ?? 10000.0;
        var scaling = parameters is not null && (parameters["rope_type"]?.GetValue<string>() ?? "default") != "default" ? parameters : json["rope_scaling"] as JsonObject;
        string type = (scaling?["rope_type"] ?? scaling?["type"])?.GetValue<string>() ?? "default";
        if (modelType == "phi3" && type is "su" or "yarn") type = "longrope";
        var plain = Enumerable.Range(0, dims / 2).Select(i => Math.Pow(theta, -2.0 * i / dims)).ToArray();
        switch (type)
        {
            case "default":
                return (dims, plain, 1.0);
            case "linear":
                return (dims, plain.Select(f => f / Number(scaling!["factor"])!.Value).ToArray(), 1.0);
            case "longrope":
            {
                // Phi-3: the top-level original_max_position_embeddings (4096 by default); factor = max / original.
                double original = Number(json["original_max_position_embeddings"]) ?? 4096;
                double factor = Number(json["max_position_embeddings"])!.Value / original;
                double attention = Number(scaling!["attention_factor"]) ?? (factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
                var ext = scaling[Length > original ? "long_factor" : "short_factor"]!.AsArray();
                return (dims, plain.Select((f, i) => f / ext[i]!.GetValue<double>()).ToArray(), attention);
            }
            default:
                throw new ArgumentException(type);
        }
    }

    static Tensor Reference(JsonObject json, ModelConfig config, Dictionary<string, Tensor> weights)
    {
        string modelType = json["model_type"]!.GetValue<string>();
        var (dims, inverse, attention) = ReferenceRotary(json, modelType);
        if (modelType == "phi3")
            return Phi3GptNeoXReference.Phi3(config, weights, Ids, dims, inverse, attention, json["sliding_window"]?.GetValue<int>());
        bool exact = (json["hidden_act"]?.GetValue<string>() ?? "gelu") == "gelu";
        return Phi3GptNeoXReference.GptNeoX(config, weights, Ids, dims, inverse, json["use_parallel_residual"]?.GetValue<bool>() ?? true,
            exact ? Phi3GptNeoXReference.ExactGelu : Phi3GptNeoXReference.TanhGelu);
    }

    const string Short4 = "[1.0,1.5,2.0,3.0]", Long4 = "[2.0,3.0,5.0,7.0]";

    /// <summary>Honoured: (model type, field, value, fields it needs beside it).</summary>
    public static TheoryData<string, string, string, string> Honoured => new()
    {
        { "phi3", "vocab_size", "48", "{}" }, { "phi3", "hidden_size", "64", "{}" }, { "phi3", "intermediate_size", "20", "{}" },
        { "phi3", "num_hidden_layers", "3", "{}" }, { "phi3", "num_attention_heads", "8", "{}" }, { "phi3", "num_key_value_heads", "4", "{}" },
        { "phi3", "rope_theta", "500000", "{}" }, { "phi3", "rms_norm_eps", "0.5", "{}" }, { "phi3", "tie_word_embeddings", "true", "{}" },
        { "phi3", "partial_rotary_factor", "0.5", "{}" }, { "phi3", "sliding_window", "8", "{}" }, { "phi3", "sliding_window", "1", "{}" },
        // LongRoPE within the pre-training context (short factors; factor 64/4096 < 1, so no attention factor)…
        { "phi3", "rope_scaling", $$"""{"type":"longrope","short_factor":{{Short4}},"long_factor":{{Long4}}}""", "{}" },
        // …past it (long factors, attention factor √(1 + ln 4 / ln 16)), and Phi-3's old name for it.
        { "phi3", "original_max_position_embeddings", "16", $$$"""{"rope_scaling":{"type":"longrope","short_factor":{{{Short4}}},"long_factor":{{{Long4}}}}}""" },
        { "phi3", "rope_scaling", $$"""{"type":"su","short_factor":{{Short4}},"long_factor":{{Long4}}}""", """{"original_max_position_embeddings":32}""" },
        { "phi3", "rope_scaling", """{"rope_type":"longrope","short_factor":[1.0,2.0],"long_factor":[3.0,4.0],"attention_factor":1.5}""", """{"partial_rotary_factor":0.5}""" },
        { "phi3", "rope_parameters", """{"rope_theta":20000.0,"rope_type":"longrope","partial_rotary_factor":0.5,"short_factor":[1.0,2.0],"long_factor":[3.0,4.0]}""", "{}" },
        { "gpt_neox", "vocab_size", "48", "{}" }, { "gpt_neox", "hidden_size", "64", "{}" }, { "gpt_neox", "intermediate_size", "20", "{}" },
        { "gpt_neox", "num_hidden_layers", "3", "{}" }, { "gpt_neox", "num_attention_heads", "2", "{}" },
        { "gpt_neox", "rotary_pct", "1.0", "{}" }, { "gpt_neox", "rotary_pct", "0.25", "{}" }, { "gpt_neox", "rotary_emb_base", "500", "{}" },
        { "gpt_neox", "rope_theta", "700", "{}" }, { "gpt_neox", "rope_scaling", """{"rope_type":"linear","factor":4.0}""", "{}" },
        { "gpt_neox", "rope_parameters", """{"rope_theta":300.0,"rope_type":"default","partial_rotary_factor":0.5}""", "{}" },
        { "gpt_neox", "use_parallel_residual", "false", "{}" }, { "gpt_neox", "hidden_act", "\"gelu_new\"", "{}" },
        { "gpt_neox", "hidden_act", "\"gelu_pytorch_tanh\"", "{}" }, { "gpt_neox", "layer_norm_eps", "0.5", "{}" },
        { "gpt_neox", "attention_bias", "false", "{}" }, { "gpt_neox", "tie_word_embeddings", "true", "{}" },
    };

    [Theory, MemberData(nameof(Honoured))]
    public void An_honoured_field_gives_the_references_logits(string modelType, string field, string valueJson, string besideJson)
    {
        var json = With(modelType, field, valueJson, besideJson);
        var (config, logits, weights) = Run(json);
        var baseJson = Base(modelType);
        foreach (var (key, value) in JsonNode.Parse(besideJson)!.AsObject()) baseJson[key] = value?.DeepClone();
        var (_, baseLogits, _) = Run(baseJson);
        using var _ = no_grad();
        var expected = Reference(json, config, weights);
        float diff = (expected - logits).abs().max().item<float>();
        Assert.True(diff < 1e-4f, $"{modelType} {field}={valueJson}: max |model − reference| = {diff}");
        bool changed = !logits.shape.SequenceEqual(baseLogits.shape) || (logits - baseLogits).abs().max().item<float>() > 1e-4f;
        Assert.True(changed, $"{modelType} {field}={valueJson}: the logits did not change");
    }

    public static TheoryData<string, string, string> Refused => new()
    {
        { "phi3", "hidden_act", "\"gelu\"" }, { "phi3", "head_dim", "16" }, { "phi3", "quantization_config", """{"quant_method":"gptq"}""" },
        { "phi3", "rope_scaling", """{"rope_type":"linear","factor":2.0}""" },
        { "gpt_neox", "hidden_act", "\"relu\"" }, { "gpt_neox", "head_dim", "16" }, { "gpt_neox", "quantization_config", "{}" },
    };

    [Theory, MemberData(nameof(Refused))]
    public void A_refused_field_is_one_error_naming_field_value_and_model_type(string modelType, string field, string valueJson)
    {
        var e = Assert.Throws<PargsException>(() => ModelConfig.FromHuggingFaceJson(With(modelType, field, valueJson), "config.json"));
        Assert.Contains(field, e.Message);
        var value = JsonNode.Parse(valueJson)!;
        if (value is JsonObject { Count: > 0 } inner) Assert.Contains(inner.Select(p => p.Key), key => e.Message.Contains(key));
        else Assert.Contains(value.ToJsonString(), e.Message);
        Assert.Contains($"\"{modelType}\"", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    public static TheoryData<string> ModelTypes => new() { "phi3", "gpt_neox" };

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

    [Theory, MemberData(nameof(ModelTypes))]
    public void Every_honoured_or_refused_field_is_tested(string modelType)
    {
        var tested = Honoured.Select(r => ((string)r[0], (string)r[1])).Concat(Refused.Select(r => ((string)r[0], (string)r[1])))
            .Concat(new[] { "bos_token_id", "eos_token_id", "pad_token_id", "max_position_embeddings" }.Select(f => (modelType, f)))
            .ToHashSet();
        foreach (var field in ModelFamilies.ForModelType(modelType).ConfigFields(modelType).Where(f => f.Use != ConfigFieldUse.Irrelevant))
            Assert.True(tested.Contains((modelType, field.Name)), $"{modelType}: config field \"{field.Name}\" ({field.Use}) has no row in the fidelity table");
    }

    [Theory]
    [InlineData("phi3", "max_position_embeddings", "41")]
    [InlineData("gpt_neox", "max_position_embeddings", "41")]
    public void The_context_is_max_position_embeddings(string modelType, string field, string value)
    {
        var config = ModelConfig.FromHuggingFaceJson(With(modelType, field, value), "config.json");
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
    public void Model_type_defaults_are_transformers_own()
    {
        var phi3 = ModelConfig.FromHuggingFaceJson(new JsonObject { ["model_type"] = "phi3", ["vocab_size"] = 100, ["hidden_size"] = 128 }, "config.json");
        Assert.Equal((32, 8192, 32, 4096, 1e-5, false, 1, 32000, 32000, (int?)null, 1.0, 4096),
            (phi3.NumKvHeads, phi3.IntermediateSize, phi3.NumLayers, phi3.MaxPositions, phi3.NormEps, phi3.TieWordEmbeddings, phi3.BosTokenId, phi3.EosTokenId, phi3.PadTokenId,
             phi3.SlidingWindow, Phi3Settings.Of(phi3).PartialRotaryFactor, Phi3Settings.Of(phi3).OriginalMaxPositions));
        var neox = ModelConfig.FromHuggingFaceJson(new JsonObject { ["model_type"] = "gpt_neox", ["vocab_size"] = 100, ["hidden_size"] = 512 }, "config.json");
        Assert.Equal((64, 24576, 44, 2048, 1e-5, false, true, 0, 2, 10000.0, new GptNeoXSettings(0.25, true, "gelu")),
            (neox.NumHeads, neox.IntermediateSize, neox.NumLayers, neox.MaxPositions, neox.NormEps, neox.TieWordEmbeddings, neox.AttentionBias, neox.BosTokenId, neox.EosTokenId,
             neox.RopeTheta, GptNeoXSettings.Of(neox)));
    }

    public static TheoryData<string, string, string> Malformed => new()
    {
        { "phi3", "partial_rotary_factor", "0" }, { "phi3", "partial_rotary_factor", "\"half\"" }, { "phi3", "sliding_window", "0" },
        { "phi3", "rope_scaling", """{"type":"longrope","short_factor":[1.0],"long_factor":[1.0]}""" },
        { "phi3", "original_max_position_embeddings", "\"long\"" },
        { "gpt_neox", "rotary_pct", "0.01" }, { "gpt_neox", "rotary_pct", "2" }, { "gpt_neox", "use_parallel_residual", "\"yes\"" },
        { "gpt_neox", "rope_parameters", """{"rope_type":"default","partial_rotary_factor":0.25}""" },
    };

    /// <summary>Malformed values (and both forms disagreeing) are one PargsException naming the field.</summary>
    [Theory, MemberData(nameof(Malformed))]
    public void A_malformed_value_is_a_pargs_error_naming_the_field(string modelType, string field, string valueJson)
    {
        var json = With(modelType, field, valueJson);
        if (field == "rope_parameters") json["rotary_pct"] = 0.5; // disagrees with the 0.25 inside
        var e = Assert.Throws<PargsException>(() => ModelConfig.FromHuggingFaceJson(json, "config.json"));
        Assert.StartsWith("config.json", e.Message);
        Assert.True(e.Message.Contains(field) || e.Message.Contains("rotat") || e.Message.Contains("short_factor"), $"{field}: {e.Message}");
    }

    public static TheoryData<string, string, string> CachedCases => new()
    {
        { "phi3", "sliding_window", "6" },
        { "phi3", "partial_rotary_factor", "0.5" },
        { "phi3", "rope_scaling", $$"""{"type":"longrope","short_factor":{{Short4}},"long_factor":{{Long4}}}""" },
        { "gpt_neox", "use_parallel_residual", "true" },
        { "gpt_neox", "use_parallel_residual", "false" },
    };

    /// <summary>Decoding over the KV cache (prefill, then one token per step) gives the full forward's logits.</summary>
    [Theory, MemberData(nameof(CachedCases))]
    public void Cached_decoding_equals_the_full_forward(string modelType, string field, string valueJson)
    {
        var config = ModelConfig.FromHuggingFaceJson(With(modelType, field, valueJson), "config.json");
        using var lm = TinyModels.RandomLM(config, seed: 9);
        using var _ = no_grad();
        var full = lm.Logits(tensor(Ids).view(1, -1))[0];
        using var session = new BatchSession(lm.Backbone, 1, initialCapacity: 4);
        var last = lm.LogitsFromHidden(session.Prefill([Ids.Take(5).Select(i => (int)i).ToArray()]))[0];
        Assert.True((last - full[4]).abs().max().item<float>() < 1e-4f, "prefill");
        for (int t = 5; t < 30; t++)
        {
            var step = lm.LogitsFromHidden(session.Step(tensor(new[] { Ids[t] })))[0];
            Assert.True((step - full[t]).abs().max().item<float>() < 1e-4f, $"step {t}: cached and full forward differ");
        }
    }

    [Theory, MemberData(nameof(ModelTypes))]
    public void Greedy_text_is_the_same_on_the_cached_engine_and_the_recomputing_oracle(string modelType)
    {
        var config = ModelConfig.FromHuggingFaceJson(Base(modelType), "config.json");
        using var lm = TinyModels.RandomLM(config, seed: 5);
        lm.Tokenizer = new TestCharTokenizer(config.VocabSize);
        var options = new DecodingOptions { Method = new Pargs.Decoding.Methods.GreedyOptions(), MaxNewTokens = 12, StopAtEos = false };
        var fast = TextGenerator.Generate(lm, null, ["abc", "d"], options);
        var naive = TextGenerator.Generate(lm, null, ["abc", "d"], options with { Engine = DecodingEngine.Naive });
        Assert.Equal(naive.Select(r => r.TokenIds), fast.Select(r => r.TokenIds));
        Assert.All(fast, r => Assert.Equal(12, r.TokenIds.Length));
    }

    public static TheoryData<string, bool> Declarations => new() { { "phi3", false }, { "phi3", true }, { "gpt_neox", false }, { "gpt_neox", true }, { "gpt_neox-nobias", false } };

    /// <summary>The declaration the loader checks is exactly what the modules hold: names and shapes.</summary>
    [Theory, MemberData(nameof(Declarations))]
    public void The_declared_tensors_are_exactly_the_modules_parameters(string kind, bool rewardModel)
    {
        var json = kind == "gpt_neox-nobias" ? With("gpt_neox", "attention_bias", "false") : With(kind, "rope_theta", "10000");
        var config = ModelConfig.FromHuggingFaceJson(json, "config.json");
        using TorchSharp.torch.nn.Module model = rewardModel ? RewardModel.Create(config) : new CausalLM(config);
        var family = config.Family;
        string architecture = rewardModel ? family.SequenceClassificationArchitecture(config) : family.CausalLMArchitecture(config);
        var declared = ExpectedTensors.For(config, architecture).ToDictionary(t => t.Name, t => t.Shape);
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(declared.Keys.Order(), actual.Keys.Order());
        foreach (var (name, shape) in declared)
            Assert.True(shape.Zip(actual[name]).All(p => p.First < 0 || p.First == p.Second), $"{name}: declared [{string.Join(", ", shape)}], module [{string.Join(", ", actual[name])}]");
    }

    public static TheoryData<string> RoundTrips => new() { "phi3", "gpt_neox", "gpt_neox-sequential" };

    /// <summary>A saved folder loads back to an equal config and identical logits, under transformers' tensor names.</summary>
    [Theory, MemberData(nameof(RoundTrips))]
    public void A_saved_folder_loads_back_with_transformers_names(string name)
    {
        var config = ReferenceCheckpoints.Config(name);
        using var dir = new TempDir();
        using var original = TinyModels.RandomLM(config.Validate("test"), seed: 3);
        HuggingFaceFolder.Save(dir.File("m"), config, original.Architecture, original.StateDictForSaving());
        var stored = Safetensors.Load(Path.Combine(dir.File("m"), HuggingFaceFolder.WeightsFile));
        if (config.ModelType == "gpt_neox")
        {
            // GPTNeoXForCausalLM's head is embed_out; lm_head is Pargs' own name for it.
            Assert.Contains("embed_out.weight", stored.Keys);
            Assert.DoesNotContain("lm_head.weight", stored.Keys);
            Assert.Contains("gpt_neox.layers.1.attention.query_key_value.weight", stored.Keys);
        }
        else
        {
            Assert.Contains("model.layers.0.self_attn.qkv_proj.weight", stored.Keys);
            Assert.Contains("model.layers.0.mlp.gate_up_proj.weight", stored.Keys);
        }
        foreach (var t in stored.Values) t.Dispose();
        using var contents = CheckpointLoader.Load(dir.File("m"));
        Assert.Equal(config, contents.Config);
        using var loaded = CausalLM.FromCheckpoint(contents);
        using var _ = no_grad();
        var ids = tensor(TinyModels.Tokens(12, config.VocabSize, seed: 2).Select(i => (long)i).ToArray()).view(1, -1);
        Assert.True(original.Logits(ids).eq(loaded.Logits(ids)).all().item<bool>());
    }

    /// <summary>
    /// Old GPT-NeoX checkpoints (Pythia's on the Hub) carry the causal-mask and rotary buffers, the mask as a BOOL
    /// tensor: they load, the buffers dropped, the head read from embed_out.
    /// </summary>
    [Fact]
    public void Gpt_neox_buffers_of_old_checkpoints_are_dropped()
    {
        var config = ReferenceCheckpoints.Config("gpt_neox");
        using var dir = new TempDir();
        using var original = TinyModels.RandomLM(config, seed: 3);
        var entries = new List<(string Name, string Dtype, long[] Shape, byte[] Data)>();
        foreach (var (name, t) in original.StateDictForSaving())
            entries.Add((name == "lm_head.weight" ? "embed_out.weight" : name, "F32", t.shape, t.bytes.ToArray()));
        for (int i = 0; i < config.NumLayers; i++)
        {
            int n = config.MaxPositions;
            var mask = new byte[n * n];
            for (int r = 0; r < n; r++) for (int c = 0; c <= r; c++) mask[r * n + c] = 1;
            entries.Add(($"gpt_neox.layers.{i}.attention.bias", "BOOL", [1, 1, n, n], mask));
            entries.Add(($"gpt_neox.layers.{i}.attention.masked_bias", "F32", [], BitConverter.GetBytes(-1e9f)));
            entries.Add(($"gpt_neox.layers.{i}.attention.rotary_emb.inv_freq", "F32", [2], new byte[8]));
        }
        string folder = dir.File("old");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, HuggingFaceFolder.ConfigFile), config.ToHuggingFaceJson(GptNeoXFamily.CausalLM).ToJsonString());
        WriteSafetensors(Path.Combine(folder, HuggingFaceFolder.WeightsFile), entries);
        using var contents = CheckpointLoader.Load(folder);
        Assert.DoesNotContain(contents.Tensors.Keys, k => k.Contains(".attention.bias") || k.Contains("masked_bias") || k.Contains("inv_freq"));
        using var loaded = CausalLM.FromCheckpoint(contents);
        using var _ = no_grad();
        var ids = tensor(new long[] { 5, 9, 3 }).view(1, -1);
        Assert.True(original.Logits(ids).eq(loaded.Logits(ids)).all().item<bool>());
    }

    /// <summary>A safetensors file written byte by byte (any dtype), as other tools write them.</summary>
    static void WriteSafetensors(string path, List<(string Name, string Dtype, long[] Shape, byte[] Data)> entries)
    {
        var header = new JsonObject();
        long offset = 0;
        foreach (var (name, dtype, shape, data) in entries)
        {
            header[name] = new JsonObject
            {
                ["dtype"] = dtype, ["shape"] = new JsonArray(shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + data.Length),
            };
            offset += data.Length;
        }
        var headerBytes = System.Text.Encoding.UTF8.GetBytes(header.ToJsonString());
        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((long)headerBytes.Length));
        file.Write(headerBytes);
        foreach (var entry in entries) file.Write(entry.Data);
    }
}
