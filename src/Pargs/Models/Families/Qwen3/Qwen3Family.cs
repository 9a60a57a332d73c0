using System.Text.Json.Nodes;
using Pargs.Models.Families.Llama;

namespace Pargs.Models.Families.Qwen3;

/// <summary>
/// Qwen3 (dense): the Llama block with RMSNorm over each head of q and k before the rotary (q_norm, k_norm), an
/// explicit head_dim (128 by default, independent of hidden/heads) and attention_bias on q/k/v/o as Llama has it.
/// transformers derives it from Llama the same way, so the modules, the tensor declaration and the CPU decode
/// kernel are Llama's, switched by <see cref="ModelConfig.QkNorm"/>; what is Qwen3's own is its config: the
/// defaults, the field table and the architecture names.
/// </summary>
public sealed class Qwen3Family : IModelFamily
{
    public string Name => "qwen3";
    public IReadOnlyList<string> ModelTypes { get; } = ["qwen3"];
    public string HuggingFacePrefix => "model";
    public IReadOnlyList<string> Architectures { get; } = ["Qwen3ForCausalLM", "Qwen3ForSequenceClassification"];
    public string CausalLMArchitecture(ModelConfig config) => "Qwen3ForCausalLM";
    public string SequenceClassificationArchitecture(ModelConfig config) => "Qwen3ForSequenceClassification";

    public IReadOnlyList<ConfigField> ConfigFields(string modelType) =>
    [
        new("vocab_size", ConfigFieldUse.Honoured), new("hidden_size", ConfigFieldUse.Honoured),
        new("intermediate_size", ConfigFieldUse.Honoured), new("num_hidden_layers", ConfigFieldUse.Honoured),
        new("num_attention_heads", ConfigFieldUse.Honoured), new("num_key_value_heads", ConfigFieldUse.Honoured),
        new("head_dim", ConfigFieldUse.Honoured, "128 when absent"), new("max_position_embeddings", ConfigFieldUse.Honoured),
        new("rope_theta", ConfigFieldUse.Honoured), new("rope_scaling", ConfigFieldUse.Honoured, string.Join(", ", RopeScaling.Types)),
        new("rope_parameters", ConfigFieldUse.Honoured), new("rms_norm_eps", ConfigFieldUse.Honoured, "also the q/k norms'"),
        new("attention_bias", ConfigFieldUse.Honoured, "q/k/v and o_proj"), new("tie_word_embeddings", ConfigFieldUse.Honoured),
        new("bos_token_id", ConfigFieldUse.Honoured), new("eos_token_id", ConfigFieldUse.Honoured), new("pad_token_id", ConfigFieldUse.Honoured),
        new("hidden_act", ConfigFieldUse.RefusedUnlessDefault, "silu"),
        new("use_sliding_window", ConfigFieldUse.RefusedUnlessDefault, "false"),
        new("layer_types", ConfigFieldUse.RefusedUnlessDefault, "all full_attention"),
        new("quantization_config", ConfigFieldUse.RefusedUnlessDefault, "absent"),
        new("sliding_window", ConfigFieldUse.Irrelevant, "only with use_sliding_window"),
        new("max_window_layers", ConfigFieldUse.Irrelevant, "only with use_sliding_window"),
        new("attention_dropout", ConfigFieldUse.Irrelevant), new("initializer_range", ConfigFieldUse.Irrelevant),
        new("use_cache", ConfigFieldUse.Irrelevant), new("torch_dtype", ConfigFieldUse.Irrelevant), new("transformers_version", ConfigFieldUse.Irrelevant),
    ];

    public ModelConfig ReadConfig(JsonObject json, string source)
    {
        var c = new ConfigJson(json, source);
        PargsException Refuse(string field) => c.Error($"config field \"{field}\" = {json[field]!.ToJsonString()} is not supported for model_type \"qwen3\"");
        if (c.String("hidden_act") is { } act && act != "silu") throw Refuse("hidden_act");
        if (c.Bool("use_sliding_window", false)) throw Refuse("use_sliding_window");
        if (json["layer_types"] is JsonArray types && types.Any(t => t?.ToString() != "full_attention")) throw Refuse("layer_types");
        if (c.Has("quantization_config")) throw Refuse("quantization_config");
        // Qwen3Config's defaults.
        int heads = c.Int("num_attention_heads", 32);
        bool bias = c.Bool("attention_bias", false);
        int[] eos = c.TokenIds("eos_token_id");
        var (theta, scaling) = RopeScaling.Read(c, "qwen3", 10000.0);
        return new ModelConfig
        {
            ModelType = "qwen3",
            VocabSize = c.Int("vocab_size", 151936),
            HiddenSize = c.Int("hidden_size", 4096),
            IntermediateSize = c.Int("intermediate_size", 22016),
            NumLayers = c.Int("num_hidden_layers", 32),
            NumHeads = heads,
            NumKvHeads = c.Int("num_key_value_heads", 32),
            HeadDim = c.Int("head_dim", 128),
            MaxPositions = c.Int("max_position_embeddings", 32768),
            RopeTheta = theta,
            RopeScaling = scaling,
            NormEps = c.Double("rms_norm_eps", 1e-6),
            TieWordEmbeddings = c.Bool("tie_word_embeddings", false),
            AttentionBias = bias,
            AttentionOutputBias = bias,
            QkNorm = true,
            BosTokenId = c.TokenId("bos_token_id"),
            EosTokenId = eos.Length > 0 ? eos[0] : null,
            MoreEosTokenIds = new ValueList<int>(eos.Skip(1)),
            PadTokenId = c.TokenId("pad_token_id"),
        };
    }

    public void WriteConfig(ModelConfig config, JsonObject json)
    {
        json["vocab_size"] = config.VocabSize;
        json["hidden_size"] = config.HiddenSize;
        json["intermediate_size"] = config.IntermediateSize;
        json["num_hidden_layers"] = config.NumLayers;
        json["num_attention_heads"] = config.NumHeads;
        json["num_key_value_heads"] = config.NumKvHeads;
        json["head_dim"] = config.HeadDim;
        json["max_position_embeddings"] = config.MaxPositions;
        json["rope_theta"] = config.RopeTheta;
        if (config.RopeScaling is { } scaling) json["rope_scaling"] = scaling.ToJson();
        json["rms_norm_eps"] = config.NormEps;
        json["hidden_act"] = "silu";
        json["attention_bias"] = config.AttentionBias;
    }

    public void Validate(ModelConfig config, string source)
    {
        if (config.HeadDim % 2 != 0)
            throw new PargsException($"{source}: head_dim {config.HeadDim} must be even for rotary embeddings");
        if (config.RopeScaling is { ShortFactor: { } shortFactor, LongFactor: { } longFactor } && (shortFactor.Count != config.HeadDim / 2 || longFactor.Count != config.HeadDim / 2))
            throw new PargsException($"{source}: rope_scaling short_factor and long_factor need {config.HeadDim / 2} entries (head_dim / 2), got {shortFactor.Count} and {longFactor.Count}");
        if (!config.QkNorm || config.AttentionBias != config.AttentionOutputBias || config.SlidingWindow is not null)
            throw new PargsException($"{source}: a qwen3 config has per-head q/k norms, attention_bias on q/k/v/o together and no sliding window");
    }

    public TransformerBackbone CreateBackbone(ModelConfig config) => new LlamaModel(config);

    public IReadOnlyList<TensorSpec> BackboneTensors(ModelConfig config) => LlamaTensors.Declare(config);

    public IDecodeKernel? CreateDecodeKernel(TransformerBackbone backbone) => LlamaDecodeKernel.For(backbone);

    public bool DecodesColumnMajor => false;

    public IEnumerable<(string Field, object? Value)> DescribeConfig(ModelConfig config)
    {
        yield return ("rope_theta", config.RopeTheta);
        yield return ("rope_scaling", config.RopeScaling?.ToJson().ToJsonString() ?? "default");
        yield return ("rms_norm_eps", config.NormEps);
        yield return ("attention_bias", config.AttentionBias);
        yield return ("q_norm / k_norm", "per head");
    }
}
