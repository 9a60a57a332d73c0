using TorchSharp;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Models.Families.Llama;

namespace Pargs.Models.Families.Gemma;

/// <summary>
/// Gemma-2 (<c>gemma2</c>) and Gemma-3's text model (<c>gemma3_text</c>), as transformers' modeling_gemma2 /
/// modeling_gemma3 compute them: GeGLU with the tanh GELU, RMSNorm scaling by (1 + w) in float32, norms before
/// and after both attention and MLP, embeddings scaled by √hidden, scores scaled by query_pre_attn_scalar^−½,
/// tanh soft-capping of attention scores and of the final logits, and sliding-window (local) layers interleaved
/// with global ones (Gemma-3's local layers with their own rotary base). Gemma-3 adds per-head q/k norms.
/// The multimodal <c>gemma3</c> config (Gemma3ForConditionalGeneration: a vision tower beside a text_config) is
/// refused with one line: Pargs runs the text model only.
/// <para>
/// Decoding runs on Llama's CPU decode kernel with Gemma's departures as <see cref="DecodeLayerForm"/> hooks
/// (<see cref="GemmaDecodeKernel"/>); the torch modules stay the reference and run training.
/// </para>
/// </summary>
public sealed class GemmaFamily : IModelFamily
{
    public const string Gemma2 = "gemma2", Gemma3Text = "gemma3_text", Gemma3Multimodal = "gemma3";

    public string Name => "gemma";
    public IReadOnlyList<string> ModelTypes { get; } = [Gemma2, Gemma3Text, Gemma3Multimodal];
    public string HuggingFacePrefix => "model";
    public IReadOnlyList<string> Architectures { get; } =
        ["Gemma2ForCausalLM", "Gemma2ForSequenceClassification", "Gemma3ForCausalLM", "Gemma3TextForSequenceClassification"];
    public string CausalLMArchitecture(ModelConfig config) => config.ModelType == Gemma2 ? "Gemma2ForCausalLM" : "Gemma3ForCausalLM";
    // transformers' Gemma3ForSequenceClassification wraps the multimodal Gemma3Model; the text model's is Gemma3TextForSequenceClassification.
    public string SequenceClassificationArchitecture(ModelConfig config) =>
        config.ModelType == Gemma2 ? "Gemma2ForSequenceClassification" : "Gemma3TextForSequenceClassification";

    public IReadOnlyList<ConfigField> ConfigFields(string modelType)
    {
        if (modelType == Gemma3Multimodal)
            return
            [
                new("text_config", ConfigFieldUse.RefusedUnlessDefault, "absent: the multimodal model is refused; load a gemma3_text checkpoint"),
                new("vision_config", ConfigFieldUse.RefusedUnlessDefault, "absent: Pargs has no vision tower"),
            ];
        bool gemma3 = modelType == Gemma3Text;
        var fields = new List<ConfigField>
        {
            new("vocab_size", ConfigFieldUse.Honoured), new("hidden_size", ConfigFieldUse.Honoured, "also the embedding scale √hidden"),
            new("intermediate_size", ConfigFieldUse.Honoured), new("num_hidden_layers", ConfigFieldUse.Honoured),
            new("num_attention_heads", ConfigFieldUse.Honoured), new("num_key_value_heads", ConfigFieldUse.Honoured),
            new("head_dim", ConfigFieldUse.Honoured, "256 when absent"), new("max_position_embeddings", ConfigFieldUse.Honoured, "the context Pargs allows"),
            new("rms_norm_eps", ConfigFieldUse.Honoured, gemma3 ? "also the q/k norms'" : ""), new("tie_word_embeddings", ConfigFieldUse.Honoured, "true when absent"),
            new("bos_token_id", ConfigFieldUse.Honoured), new("eos_token_id", ConfigFieldUse.Honoured, "one id or a list"),
            new("pad_token_id", ConfigFieldUse.Honoured, "the reward model's padding"),
            new("attention_bias", ConfigFieldUse.Honoured, "q/k/v and o_proj"),
            new("query_pre_attn_scalar", ConfigFieldUse.Honoured, "scores × its −½ power"),
            new("attn_logit_softcapping", ConfigFieldUse.Honoured, "tanh(s/c)·c on the scores; null = none"),
            new("final_logit_softcapping", ConfigFieldUse.Honoured, "tanh(x/c)·c on the logits (not on a reward model's score); null = none"),
            new("sliding_window", ConfigFieldUse.Honoured, "on the sliding_attention layers"),
            new("layer_types", ConfigFieldUse.Honoured, "sliding_attention / full_attention per layer"),
            new("rope_theta", ConfigFieldUse.Honoured, gemma3 ? "the global layers'" : ""),
            new("rope_scaling", ConfigFieldUse.Honoured, (gemma3 ? "the global layers only: " : "") + string.Join(", ", RopeScaling.Types)),
            new("rope_parameters", ConfigFieldUse.Honoured, gemma3 ? "one set, or one per layer type (full_attention, sliding_attention)" : "rope_theta + rope_type and its keys"),
            new("hidden_activation", ConfigFieldUse.RefusedUnlessDefault, "gelu_pytorch_tanh"),
            new("quantization_config", ConfigFieldUse.RefusedUnlessDefault, "absent"),
            new("attention_dropout", ConfigFieldUse.Irrelevant, "training only"), new("initializer_range", ConfigFieldUse.Irrelevant, "initialisation only"),
            new("use_cache", ConfigFieldUse.Irrelevant), new("cache_implementation", ConfigFieldUse.Irrelevant, "Pargs' own KV cache"),
            new("torch_dtype", ConfigFieldUse.Irrelevant, "weights load as float32"), new("dtype", ConfigFieldUse.Irrelevant, "weights load as float32"),
            new("transformers_version", ConfigFieldUse.Irrelevant),
            new("hidden_act", ConfigFieldUse.Irrelevant, "transformers' Gemma reads hidden_activation"),
        };
        if (gemma3)
        {
            fields.Add(new("rope_local_base_freq", ConfigFieldUse.Honoured, "the sliding layers' rotary base"));
            fields.Add(new("sliding_window_pattern", ConfigFieldUse.Honoured, "every n-th layer global, when layer_types is absent"));
            fields.Add(new("use_bidirectional_attention", ConfigFieldUse.RefusedUnlessDefault, "false"));
        }
        else fields.Add(new("sliding_window_size", ConfigFieldUse.Irrelevant, "transformers' Gemma2 reads sliding_window"));
        return fields;
    }

    public ModelConfig ReadConfig(JsonObject json, string source)
    {
        var c = new ConfigJson(json, source);
        string modelType = c.String("model_type")!;
        if (modelType == Gemma3Multimodal)
            throw c.Error("model_type \"gemma3\" is the multimodal Gemma3ForConditionalGeneration (a vision tower and a text_config); " +
                          "Pargs runs Gemma-3's text model only: load a checkpoint with model_type \"gemma3_text\" (Gemma3ForCausalLM)");
        bool gemma3 = modelType == Gemma3Text;
        PargsException Refuse(string field, string why = "") =>
            c.Error($"config field \"{field}\" = {json[field]!.ToJsonString()} is not supported for model_type \"{modelType}\"{why}");

        if (c.String("hidden_activation") is { } act && act != "gelu_pytorch_tanh") throw Refuse("hidden_activation", " (Pargs runs gelu_pytorch_tanh)");
        if (c.Has("quantization_config")) throw Refuse("quantization_config", " (load dequantized weights)");
        if (gemma3 && c.Bool("use_bidirectional_attention", false)) throw Refuse("use_bidirectional_attention", " (Pargs runs causal attention)");

        // Gemma2Config's / Gemma3TextConfig's defaults.
        int layers = c.Int("num_hidden_layers", 26);
        int[] eos = c.TokenIds("eos_token_id");
        if (!json.ContainsKey("eos_token_id")) eos = [1];
        bool bias = c.Bool("attention_bias", false);

        // The rotary: Gemma-2 has one for every layer; Gemma-3 a global one (rope_theta, rope_scaling) and a local one
        // (rope_local_base_freq, default rotary), or in transformers' newer form one rope_parameters set per layer type.
        double localTheta;
        RopeScaling? localScaling;
        double theta;
        RopeScaling? scaling;
        if (gemma3 && json["rope_parameters"] is JsonObject perType && perType.Any(p => p.Value is JsonObject))
        {
            foreach (var (key, value) in perType)
                if (key is not ("full_attention" or "sliding_attention") || value is not JsonObject)
                    throw c.Error($"config field \"rope_parameters.{key}\" = {value?.ToJsonString() ?? "null"} is not supported for model_type \"{modelType}\" (expected full_attention and sliding_attention sets)");
            (theta, scaling) = ReadRope(c, perType["full_attention"] as JsonObject, "full_attention", modelType, c.Double("rope_theta", 1_000_000.0));
            (localTheta, localScaling) = ReadRope(c, perType["sliding_attention"] as JsonObject, "sliding_attention", modelType, c.Double("rope_local_base_freq", 10000.0));
        }
        else
        {
            (theta, scaling) = RopeScaling.Read(c, modelType, gemma3 ? 1_000_000.0 : 10000.0);
            (localTheta, localScaling) = gemma3 ? (c.Double("rope_local_base_freq", 10000.0), null) : (theta, scaling);
        }
        if (localTheta <= 0) throw c.Error($"rope_local_base_freq must be positive, got {localTheta}");

        bool[] sliding;
        if (json["layer_types"] is JsonArray types)
        {
            if (types.Count != layers)
                throw c.Error($"field \"layer_types\" lists {types.Count} layers but num_hidden_layers is {layers}");
            sliding = new bool[layers];
            for (int i = 0; i < layers; i++)
                sliding[i] = (types[i]?.GetValueKind() == JsonValueKind.String ? types[i]!.GetValue<string>() : null) switch
                {
                    "sliding_attention" => true,
                    "full_attention" => false,
                    _ => throw c.Error($"config field \"layer_types\" = {types.ToJsonString()} is not supported for model_type \"{modelType}\" (layer {i}: expected \"sliding_attention\" or \"full_attention\")"),
                };
        }
        else if (c.Has("layer_types")) throw c.Error($"field \"layer_types\" must be a list, got {json["layer_types"]!.ToJsonString()}");
        else
        {
            int pattern = gemma3 ? c.Int("sliding_window_pattern", 6) : 2;
            if (pattern <= 0) throw c.Error($"field \"sliding_window_pattern\" must be positive, got {pattern}");
            sliding = layers is > 0 and <= 1 << 16 ? GemmaSettings.DefaultSlidingLayers(layers, pattern) : [];
        }
        int? window = json.ContainsKey("sliding_window") ? c.OptionalInt("sliding_window") : 4096;
        if (window is null && sliding.Any(s => s))
            throw c.Error($"config field \"sliding_window\" = null is not supported for model_type \"{modelType}\" (its sliding_attention layers need a window)");

        // Absent = the model type's default (Gemma-2: 50 and 30; Gemma-3: none); null = none.
        double? Cap(string field, double? fallback)
        {
            if (!json.ContainsKey(field)) return fallback;
            if (!c.Has(field)) return null;
            double cap = c.Double(field, 0);
            if (!(cap > 0 && double.IsFinite(cap))) throw c.Error($"field \"{field}\" must be a positive number or null, got {json[field]!.ToJsonString()}");
            return cap;
        }
        double queryScalar = c.Double("query_pre_attn_scalar", 256);
        if (!(queryScalar > 0 && double.IsFinite(queryScalar))) throw c.Error($"field \"query_pre_attn_scalar\" must be a positive number, got {json["query_pre_attn_scalar"]!.ToJsonString()}");

        return new ModelConfig
        {
            ModelType = modelType,
            VocabSize = c.Int("vocab_size", gemma3 ? 262_208 : 256_000),
            HiddenSize = c.Int("hidden_size", 2304),
            IntermediateSize = c.Int("intermediate_size", 9216),
            NumLayers = layers,
            NumHeads = c.Int("num_attention_heads", 8),
            NumKvHeads = c.Int("num_key_value_heads", 4),
            HeadDim = c.Int("head_dim", 256),
            MaxPositions = c.Int("max_position_embeddings", gemma3 ? 131_072 : 8192),
            RopeTheta = theta,
            RopeScaling = scaling,
            SlidingWindow = sliding.Any(s => s) ? window : null,
            NormEps = c.Double("rms_norm_eps", 1e-6),
            TieWordEmbeddings = c.Bool("tie_word_embeddings", true),
            AttentionBias = bias,
            AttentionOutputBias = bias,
            QkNorm = gemma3,
            BosTokenId = json.ContainsKey("bos_token_id") ? c.TokenId("bos_token_id") : 2,
            EosTokenId = eos.Length > 0 ? eos[0] : null,
            MoreEosTokenIds = new ValueList<int>(eos.Skip(1)),
            PadTokenId = json.ContainsKey("pad_token_id") ? c.TokenId("pad_token_id") : 0,
            Extras = new GemmaSettings
            {
                QueryPreAttnScalar = queryScalar,
                AttnLogitSoftcapping = Cap("attn_logit_softcapping", gemma3 ? null : 50.0),
                FinalLogitSoftcapping = Cap("final_logit_softcapping", gemma3 ? null : 30.0),
                SlidingLayers = new ValueList<bool>(sliding),
                LocalRopeTheta = localTheta,
                LocalRopeScaling = localScaling,
            },
        };
    }

    /// <summary>One layer type's set of transformers' per-type rope_parameters, read as the flat form is.</summary>
    static (double Theta, RopeScaling? Scaling) ReadRope(ConfigJson c, JsonObject? set, string layerType, string modelType, double fallbackTheta)
    {
        if (set is null) return (fallbackTheta, null);
        var wrapped = new JsonObject { ["rope_parameters"] = set.DeepClone() };
        return RopeScaling.Read(new ConfigJson(wrapped, $"{c.Source} rope_parameters.{layerType}"), modelType, fallbackTheta);
    }

    public void WriteConfig(ModelConfig config, JsonObject json)
    {
        var g = GemmaSettings.Of(config);
        bool gemma3 = config.ModelType == Gemma3Text;
        json["vocab_size"] = config.VocabSize;
        json["hidden_size"] = config.HiddenSize;
        json["intermediate_size"] = config.IntermediateSize;
        json["num_hidden_layers"] = config.NumLayers;
        json["num_attention_heads"] = config.NumHeads;
        json["num_key_value_heads"] = config.NumKvHeads;
        json["head_dim"] = config.HeadDim;
        json["max_position_embeddings"] = config.MaxPositions;
        json["rms_norm_eps"] = config.NormEps;
        json["hidden_activation"] = "gelu_pytorch_tanh";
        json["attention_bias"] = config.AttentionBias;
        json["query_pre_attn_scalar"] = g.QueryPreAttnScalar;
        json["attn_logit_softcapping"] = g.AttnLogitSoftcapping is { } a ? a : null;
        json["final_logit_softcapping"] = g.FinalLogitSoftcapping is { } f ? f : null;
        json["sliding_window"] = config.SlidingWindow is { } w ? w : null;
        json["layer_types"] = new JsonArray(g.SlidingLayers.Select(s => (JsonNode?)(s ? "sliding_attention" : "full_attention")).ToArray());
        json["rope_theta"] = config.RopeTheta;
        if (config.RopeScaling is { } scaling) json["rope_scaling"] = scaling.ToJson();
        if (gemma3)
        {
            json["rope_local_base_freq"] = g.LocalRopeTheta;
            // A scaled local rotary exists only in the per-layer-type form.
            if (g.LocalRopeScaling is { } local)
            {
                json.Remove("rope_scaling");
                var full = config.RopeScaling?.ToJson() ?? new JsonObject { ["rope_type"] = "default" };
                full["rope_theta"] = config.RopeTheta;
                var sliding = local.ToJson();
                sliding["rope_theta"] = g.LocalRopeTheta;
                json["rope_parameters"] = new JsonObject { ["full_attention"] = full, ["sliding_attention"] = sliding };
            }
        }
    }

    public void Validate(ModelConfig config, string source)
    {
        var g = config.Extras as GemmaSettings
            ?? throw new PargsException($"{source}: a {config.ModelType} config needs its Gemma settings (query_pre_attn_scalar, soft-caps, layer types)");
        if (config.HeadDim % 2 != 0)
            throw new PargsException($"{source}: head_dim {config.HeadDim} must be even for rotary embeddings");
        foreach (var s in new[] { config.RopeScaling, g.LocalRopeScaling })
            if (s is { ShortFactor: { } shortFactor, LongFactor: { } longFactor } && (shortFactor.Count != config.HeadDim / 2 || longFactor.Count != config.HeadDim / 2))
                throw new PargsException($"{source}: rope_scaling short_factor and long_factor need {config.HeadDim / 2} entries (head_dim / 2), got {shortFactor.Count} and {longFactor.Count}");
        if (g.SlidingLayers.Count != config.NumLayers)
            throw new PargsException($"{source}: layer_types lists {g.SlidingLayers.Count} layers but num_hidden_layers is {config.NumLayers}");
        if (g.SlidingLayers.Any(s => s) && config.SlidingWindow is null)
            throw new PargsException($"{source}: the sliding_attention layers need a sliding_window");
        if (config.QkNorm != (config.ModelType == Gemma3Text) || config.AttentionBias != config.AttentionOutputBias)
            throw new PargsException($"{source}: a {config.ModelType} config has {(config.ModelType == Gemma3Text ? "" : "no ")}per-head q/k norms and attention_bias on q/k/v/o together");
    }

    public TransformerBackbone CreateBackbone(ModelConfig config) => new GemmaModel(config);

    public IReadOnlyList<TensorSpec> BackboneTensors(ModelConfig config) => GemmaTensors.Declare(config);

    /// <summary>Llama's CPU decode kernel with Gemma's hooks (<see cref="GemmaDecodeKernel"/>).</summary>
    public IDecodeKernel? CreateDecodeKernel(TransformerBackbone backbone) => backbone is GemmaModel model ? GemmaDecodeKernel.For(model) : null;

    // The kernel reads row-major weights (column-major ones would send every step back to torch).
    public bool DecodesColumnMajor => false;

    /// <summary>tanh(x / c) · c on the LM head's output (final_logit_softcapping).</summary>
    public TorchSharp.torch.Tensor AdjustLogits(TorchSharp.torch.Tensor logits, ModelConfig config)
    {
        if (GemmaSettings.Of(config).FinalLogitSoftcapping is not { } cap) return logits;
        // An explicit Scalar held across its calls: TorchSharp frees an implicit Scalar in its finalizer and keeps no reference to it across the native call, so a collection during the call can free what libtorch reads ("Unknown scalar type").
        using var capScalar = cap.ToScalar();
        return (logits / capScalar).tanh() * capScalar;
    }

    public IEnumerable<(string Field, object? Value)> DescribeConfig(ModelConfig config)
    {
        var g = GemmaSettings.Of(config);
        string Number(double? v) => v is { } x ? x.ToString(CultureInfo.InvariantCulture) : "none";
        yield return ("rms_norm_eps", config.NormEps);
        yield return ("attention_bias", config.AttentionBias);
        yield return ("query_pre_attn_scalar", Number(g.QueryPreAttnScalar));
        yield return ("attn_logit_softcapping", Number(g.AttnLogitSoftcapping));
        yield return ("final_logit_softcapping", Number(g.FinalLogitSoftcapping));
        yield return ("sliding_window", config.SlidingWindow?.ToString() ?? "none");
        yield return ("layer_types", string.Concat(g.SlidingLayers.Select(s => s ? 'S' : 'G')) + " (S sliding, G global)");
        yield return ("rope_theta", config.RopeTheta);
        yield return ("rope_scaling", config.RopeScaling?.ToJson().ToJsonString() ?? "default");
        if (config.ModelType == Gemma3Text)
        {
            yield return ("rope_local_base_freq", g.LocalRopeTheta);
            if (g.LocalRopeScaling is { } local) yield return ("local rope_scaling", local.ToJson().ToJsonString());
            yield return ("q_norm / k_norm", "per head");
        }
        yield return ("hidden_activation", "gelu_pytorch_tanh");
    }
}
