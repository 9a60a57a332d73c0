using System.Text.Json.Nodes;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// Llama and the models transformers writes as Llama with switches: Mistral (sliding-window attention), and
/// Qwen2 (q/k/v biases always). Each model type reads its config with transformers' own defaults for it.
/// Decodes on <see cref="LlamaDecodeKernel"/> with PyTorch's row-major weights.
/// </summary>
public sealed class LlamaFamily : IModelFamily
{
    /// <summary>
    /// transformers' defaults per model type (LlamaConfig, MistralConfig, Qwen2Config). QkvBias: null = read
    /// attention_bias (Llama); Mistral's attention has no biases and Qwen2's always has them, whatever the config says.
    /// </summary>
    sealed record Defaults(string Stem, int Vocab, int Hidden, int Intermediate, int Layers, int Heads, int? KvHeads,
        int MaxPositions, bool? QkvBias, int? SlidingWindow);

    static readonly Dictionary<string, Defaults> ByModelType = new(StringComparer.Ordinal)
    {
        ["llama"] = new("Llama", 32000, 4096, 11008, 32, 32, null, 2048, null, null),
        ["mistral"] = new("Mistral", 32000, 4096, 14336, 32, 32, 8, 4096 * 32, false, 4096),
        ["qwen2"] = new("Qwen2", 151936, 4096, 22016, 32, 32, 32, 32768, true, null),
    };

    public string Name => "llama";
    public IReadOnlyList<string> ModelTypes { get; } = ByModelType.Keys.ToList();
    public string HuggingFacePrefix => "model";
    public IReadOnlyList<string> Architectures { get; } =
        ByModelType.Values.SelectMany(d => new[] { d.Stem + "ForCausalLM", d.Stem + "ForSequenceClassification" }).ToList();

    static Defaults Of(ModelConfig config) => ByModelType.GetValueOrDefault(config.ModelType) ?? ByModelType["llama"];
    public string CausalLMArchitecture(ModelConfig config) => Of(config).Stem + "ForCausalLM";
    public string SequenceClassificationArchitecture(ModelConfig config) => Of(config).Stem + "ForSequenceClassification";

    /// <summary>The known config.json fields of <paramref name="modelType"/>: honoured, refused unless default, or irrelevant to inference.</summary>
    public IReadOnlyList<ConfigField> ConfigFields(string modelType)
    {
        var fields = new List<ConfigField>
        {
            new("vocab_size", ConfigFieldUse.Honoured), new("hidden_size", ConfigFieldUse.Honoured),
            new("intermediate_size", ConfigFieldUse.Honoured), new("num_hidden_layers", ConfigFieldUse.Honoured),
            new("num_attention_heads", ConfigFieldUse.Honoured), new("num_key_value_heads", ConfigFieldUse.Honoured),
            new("head_dim", ConfigFieldUse.Honoured), new("max_position_embeddings", ConfigFieldUse.Honoured, "the context Pargs allows"),
            new("rope_theta", ConfigFieldUse.Honoured), new("rope_scaling", ConfigFieldUse.Honoured, string.Join(", ", RopeScaling.Types)),
            new("rope_parameters", ConfigFieldUse.Honoured, "rope_theta + rope_type and its keys"),
            new("rms_norm_eps", ConfigFieldUse.Honoured), new("tie_word_embeddings", ConfigFieldUse.Honoured),
            new("bos_token_id", ConfigFieldUse.Honoured), new("eos_token_id", ConfigFieldUse.Honoured, "one id or a list"),
            new("pad_token_id", ConfigFieldUse.Honoured, "the reward model's padding"),
            new("hidden_act", ConfigFieldUse.RefusedUnlessDefault, "silu"),
            new("partial_rotary_factor", ConfigFieldUse.RefusedUnlessDefault, "1.0"),
            new("quantization_config", ConfigFieldUse.RefusedUnlessDefault, "absent"),
            new("attention_dropout", ConfigFieldUse.Irrelevant, "training only"),
            new("initializer_range", ConfigFieldUse.Irrelevant, "initialisation only"),
            new("use_cache", ConfigFieldUse.Irrelevant), new("torch_dtype", ConfigFieldUse.Irrelevant, "weights load as float32"),
            new("dtype", ConfigFieldUse.Irrelevant, "weights load as float32"),
            new("pretraining_tp", ConfigFieldUse.Irrelevant, "splits the same products"),
            new("transformers_version", ConfigFieldUse.Irrelevant),
        };
        switch (modelType)
        {
            case "llama":
                fields.Add(new("attention_bias", ConfigFieldUse.Honoured));
                fields.Add(new("mlp_bias", ConfigFieldUse.RefusedUnlessDefault, "false"));
                break;
            case "mistral":
                fields.Add(new("sliding_window", ConfigFieldUse.Honoured, "null = full attention"));
                break;
            case "qwen2":
                fields.Add(new("use_sliding_window", ConfigFieldUse.RefusedUnlessDefault, "false"));
                fields.Add(new("sliding_window", ConfigFieldUse.Irrelevant, "only with use_sliding_window"));
                fields.Add(new("max_window_layers", ConfigFieldUse.Irrelevant, "only with use_sliding_window"));
                fields.Add(new("layer_types", ConfigFieldUse.RefusedUnlessDefault, "all full_attention"));
                break;
        }
        return fields;
    }

    public ModelConfig ReadConfig(JsonObject json, string source)
    {
        var c = new ConfigJson(json, source);
        string modelType = c.String("model_type")!;
        var d = ByModelType[modelType];
        PargsException Refuse(string field, string why = "") =>
            c.Error($"config field \"{field}\" = {json[field]!.ToJsonString()} is not supported for model_type \"{modelType}\"{why}");

        if (c.String("hidden_act") is { } act && act != "silu") throw Refuse("hidden_act", " (Pargs runs silu)");
        if (c.Has("partial_rotary_factor") && c.Double("partial_rotary_factor", 1.0) != 1.0) throw Refuse("partial_rotary_factor");
        if (c.Has("quantization_config")) throw Refuse("quantization_config", " (load dequantized weights)");
        if (modelType == "llama" && c.Bool("mlp_bias", false)) throw Refuse("mlp_bias");
        if (modelType == "qwen2")
        {
            if (c.Bool("use_sliding_window", false)) throw Refuse("use_sliding_window");
            if (json["layer_types"] is JsonArray types && types.Any(t => t?.ToString() != "full_attention")) throw Refuse("layer_types");
        }

        int heads = c.Int("num_attention_heads", d.Heads);
        int[] eos = c.TokenIds("eos_token_id");
        var (theta, scaling) = RopeScaling.Read(c, modelType, 10000.0);
        var config = new ModelConfig
        {
            ModelType = modelType,
            VocabSize = c.Int("vocab_size", d.Vocab),
            HiddenSize = c.Int("hidden_size", d.Hidden),
            IntermediateSize = c.Int("intermediate_size", d.Intermediate),
            NumLayers = c.Int("num_hidden_layers", d.Layers),
            NumHeads = heads,
            NumKvHeads = c.Int("num_key_value_heads", d.KvHeads ?? heads),
            MaxPositions = c.Int("max_position_embeddings", d.MaxPositions),
            RopeTheta = theta,
            RopeScaling = scaling,
            NormEps = c.Double("rms_norm_eps", 1e-6),
            TieWordEmbeddings = c.Bool("tie_word_embeddings", false),
            AttentionBias = d.QkvBias ?? c.Bool("attention_bias", false),
            // transformers' LlamaAttention gives o_proj a bias with attention_bias too; Qwen2's and Mistral's never.
            AttentionOutputBias = d.QkvBias is null && c.Bool("attention_bias", false),
            SlidingWindow = modelType == "mistral" ? (json.ContainsKey("sliding_window") ? c.OptionalInt("sliding_window") : d.SlidingWindow) : null,
            BosTokenId = c.TokenId("bos_token_id"),
            EosTokenId = eos.Length > 0 ? eos[0] : null,
            MoreEosTokenIds = new ValueList<int>(eos.Skip(1)),
            PadTokenId = c.TokenId("pad_token_id"),
        };
        return c.OptionalInt("head_dim") is { } headDim ? config with { HeadDim = headDim } : config;
    }

    public void WriteConfig(ModelConfig config, JsonObject json)
    {
        json["vocab_size"] = config.VocabSize;
        json["hidden_size"] = config.HiddenSize;
        json["intermediate_size"] = config.IntermediateSize;
        json["num_hidden_layers"] = config.NumLayers;
        json["num_attention_heads"] = config.NumHeads;
        json["num_key_value_heads"] = config.NumKvHeads;
        if (config.HasExplicitHeadDim) json["head_dim"] = config.HeadDim;
        json["max_position_embeddings"] = config.MaxPositions;
        json["rope_theta"] = config.RopeTheta;
        if (config.RopeScaling is { } scaling) json["rope_scaling"] = scaling.ToJson();
        json["rms_norm_eps"] = config.NormEps;
        json["hidden_act"] = "silu";
        json["attention_bias"] = config.AttentionBias;
        if (config.ModelType == "mistral") json["sliding_window"] = config.SlidingWindow is { } w ? w : null;
    }

    public void Validate(ModelConfig config, string source)
    {
        if (config.HeadDim % 2 != 0)
            throw new PargsException($"{source}: head dimension {config.HeadDim} must be even for rotary embeddings");
        var d = Of(config);
        if (config.RopeScaling is { ShortFactor: { } shortFactor, LongFactor: { } longFactor } && (shortFactor.Count != config.HeadDim / 2 || longFactor.Count != config.HeadDim / 2))
            throw new PargsException($"{source}: rope_scaling short_factor and long_factor need {config.HeadDim / 2} entries (head_dim / 2), got {shortFactor.Count} and {longFactor.Count}");
        if (d.QkvBias is { } fixedBias && config.AttentionBias != fixedBias)
            throw new PargsException($"{source}: model_type \"{config.ModelType}\" has {(fixedBias ? "" : "no ")}q/k/v biases (attention_bias {config.AttentionBias} cannot apply)");
        if (d.QkvBias is null && config.AttentionBias != config.AttentionOutputBias)
            throw new PargsException($"{source}: model_type \"{config.ModelType}\"'s attention_bias puts biases on q/k/v and o_proj together");
        if (config.AttentionOutputBias && d.QkvBias is not null)
            throw new PargsException($"{source}: model_type \"{config.ModelType}\" has no o_proj bias");
        if (config.QkNorm)
            throw new PargsException($"{source}: per-head q/k norms belong to model_type \"qwen3\", not \"{config.ModelType}\"");
        if (config.SlidingWindow is not null && config.ModelType != "mistral")
            throw new PargsException($"{source}: sliding_window is implemented for model_type \"mistral\" only, not \"{config.ModelType}\"");
    }

    public TransformerBackbone CreateBackbone(ModelConfig config) => new LlamaModel(config);

    public IReadOnlyList<TensorSpec> BackboneTensors(ModelConfig config) => LlamaTensors.Declare(config);

    public IDecodeKernel? CreateDecodeKernel(TransformerBackbone backbone) => LlamaDecodeKernel.For(backbone);

    public bool DecodesColumnMajor => false;

    public IEnumerable<(string Field, object? Value)> DescribeConfig(ModelConfig config)
    {
        if (config.HasExplicitHeadDim) yield return ("head_dim", config.HeadDim);
        yield return ("rope_theta", config.RopeTheta);
        yield return ("rope_scaling", config.RopeScaling?.ToJson().ToJsonString() ?? "default");
        yield return ("rms_norm_eps", config.NormEps);
        yield return ("attention_bias", config.AttentionBias);
        if (config.ModelType == "mistral") yield return ("sliding_window", config.SlidingWindow?.ToString() ?? "none");
    }
}
