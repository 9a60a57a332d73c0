using System.Text.Json.Nodes;
using Pargs.Models.Families.Llama;

namespace Pargs.Models.Families.Phi3;

/// <summary>
/// Phi-3 and Phi-3.5 (model_type phi3; Phi-4-mini shares it): the Llama block with q/k/v fused into one
/// <c>qkv_proj</c> and gate/up into one <c>gate_up_proj</c>, rotary on the first partial_rotary_factor of each head,
/// LongRoPE (rope_scaling "longrope", older "su"/"yarn") scaled from original_max_position_embeddings, an optional
/// sliding window, RMSNorm and an untied head.
/// <para>
/// WHY its own modules rather than splitting the fused weights into Llama's at load time (which would let
/// <see cref="LlamaDecodeKernel"/> decode it): the checkpoint Pargs saves (a trained Phi3ForSequenceClassification)
/// must be one transformers loads, and llama.cpp's phi3 wants the fused tensors too, so the fused names are the
/// truth in both directions.
/// The decode kernel is Llama's all the same, reading the fused matrices as row ranges (<see cref="Phi3DecodeKernel"/>).
/// </para>
/// </summary>
public sealed class Phi3Family : IModelFamily
{
    public const string CausalLM = "Phi3ForCausalLM", SequenceClassification = "Phi3ForSequenceClassification";

    public string Name => "phi3";
    public IReadOnlyList<string> ModelTypes { get; } = ["phi3"];
    public string HuggingFacePrefix => "model";
    public IReadOnlyList<string> Architectures { get; } = [CausalLM, SequenceClassification];
    public string CausalLMArchitecture(ModelConfig config) => CausalLM;
    public string SequenceClassificationArchitecture(ModelConfig config) => SequenceClassification;

    public IReadOnlyList<ConfigField> ConfigFields(string modelType) =>
    [
        new("vocab_size", ConfigFieldUse.Honoured), new("hidden_size", ConfigFieldUse.Honoured),
        new("intermediate_size", ConfigFieldUse.Honoured), new("num_hidden_layers", ConfigFieldUse.Honoured),
        new("num_attention_heads", ConfigFieldUse.Honoured), new("num_key_value_heads", ConfigFieldUse.Honoured, "null = num_attention_heads"),
        new("max_position_embeddings", ConfigFieldUse.Honoured, "the context Pargs allows; with longrope, factor = this / original"),
        new("original_max_position_embeddings", ConfigFieldUse.Honoured, "longrope's pre-training context (4096 when absent), as transformers' Phi-3 reads it"),
        new("rope_theta", ConfigFieldUse.Honoured), new("rope_scaling", ConfigFieldUse.Honoured, "longrope (\"su\" and \"yarn\" read as longrope, as transformers does)"),
        new("rope_parameters", ConfigFieldUse.Honoured, "rope_theta, rope_type, partial_rotary_factor and longrope's keys"),
        new("partial_rotary_factor", ConfigFieldUse.Honoured, "rotary on int(head_dim · factor) dimensions"),
        new("sliding_window", ConfigFieldUse.Honoured, "null = full attention"),
        new("rms_norm_eps", ConfigFieldUse.Honoured), new("tie_word_embeddings", ConfigFieldUse.Honoured),
        new("bos_token_id", ConfigFieldUse.Honoured), new("eos_token_id", ConfigFieldUse.Honoured, "one id or a list"),
        new("pad_token_id", ConfigFieldUse.Honoured, "the reward model's padding"),
        new("hidden_act", ConfigFieldUse.RefusedUnlessDefault, "silu"),
        new("head_dim", ConfigFieldUse.RefusedUnlessDefault, "hidden_size / num_attention_heads"),
        new("quantization_config", ConfigFieldUse.RefusedUnlessDefault, "absent"),
        new("resid_pdrop", ConfigFieldUse.Irrelevant, "training only"), new("embd_pdrop", ConfigFieldUse.Irrelevant, "training only"),
        new("attention_dropout", ConfigFieldUse.Irrelevant, "training only"), new("initializer_range", ConfigFieldUse.Irrelevant, "initialisation only"),
        new("use_cache", ConfigFieldUse.Irrelevant), new("torch_dtype", ConfigFieldUse.Irrelevant, "weights load as float32"),
        new("dtype", ConfigFieldUse.Irrelevant, "weights load as float32"), new("transformers_version", ConfigFieldUse.Irrelevant),
    ];

    public ModelConfig ReadConfig(JsonObject json, string source)
    {
        var c = new ConfigJson(json, source);
        PargsException Refuse(string field, string why = "") =>
            c.Error($"config field \"{field}\" = {json[field]!.ToJsonString()} is not supported for model_type \"phi3\"{why}");
        if (c.String("hidden_act") is { } act && act != "silu") throw Refuse("hidden_act", " (Pargs runs silu)");
        if (c.Has("quantization_config")) throw Refuse("quantization_config", " (load dequantized weights)");

        // Phi3Config's defaults.
        int hidden = c.Int("hidden_size", 3072), heads = c.Int("num_attention_heads", 32);
        if (c.OptionalInt("head_dim") is { } headDim && (heads <= 0 || headDim * heads != hidden)) throw Refuse("head_dim", " (Phi-3 heads split hidden_size evenly)");
        int original = c.Int("original_max_position_embeddings", 4096);
        var (theta, scaling, partial) = ReadRotary(c, json);
        if (scaling is not null)
        {
            // transformers' LongRoPE for Phi-3: the pre-training context is the top-level original_max_position_embeddings
            // (a Phi3Config field, 4096 by default) and factor = max_position_embeddings / that, whatever rope_scaling says.
            if (scaling.Type != "longrope")
                throw c.Error($"config field \"rope_scaling\" rope_type \"{scaling.Type}\" is not supported for model_type \"phi3\" (transformers' Phi-3 runs longrope)");
            scaling = scaling with { OriginalMaxPositions = original, Factor = null };
        }
        int[] eos = c.Has("eos_token_id") ? c.TokenIds("eos_token_id") : [32000];
        return new ModelConfig
        {
            ModelType = "phi3",
            VocabSize = c.Int("vocab_size", 32064),
            HiddenSize = hidden,
            IntermediateSize = c.Int("intermediate_size", 8192),
            NumLayers = c.Int("num_hidden_layers", 32),
            NumHeads = heads,
            NumKvHeads = c.Int("num_key_value_heads", heads),
            MaxPositions = c.Int("max_position_embeddings", 4096),
            RopeTheta = theta,
            RopeScaling = scaling,
            SlidingWindow = c.OptionalInt("sliding_window"),
            NormEps = c.Double("rms_norm_eps", 1e-5),
            TieWordEmbeddings = c.Bool("tie_word_embeddings", false),
            BosTokenId = c.Has("bos_token_id") ? c.TokenId("bos_token_id") : 1,
            EosTokenId = eos.Length > 0 ? eos[0] : null,
            MoreEosTokenIds = new ValueList<int>(eos.Skip(1)),
            PadTokenId = c.Has("pad_token_id") ? c.TokenId("pad_token_id") : 32000,
            Extras = new Phi3Settings(partial, original),
        };
    }

    /// <summary>
    /// rope_theta, the scaling and partial_rotary_factor, from either config form. The factor may sit at the top level
    /// or (transformers v5) inside rope_parameters; both present must agree. "su" and "yarn" are Phi-3's old names for
    /// longrope (Phi3Config renames them).
    /// </summary>
    static (double Theta, RopeScaling? Scaling, double PartialRotaryFactor) ReadRotary(ConfigJson c, JsonObject json)
    {
        var copy = json.DeepClone().AsObject();
        double? inner = null;
        if (copy["rope_parameters"] is JsonObject parameters)
        {
            var p = new ConfigJson(parameters, c.Source + " rope_parameters");
            if (p.Has("partial_rotary_factor")) inner = p.Double("partial_rotary_factor", 1.0);
            parameters.Remove("partial_rotary_factor");
            RenameLegacyType(parameters);
        }
        if (copy["rope_scaling"] is JsonObject legacy) RenameLegacyType(legacy);
        double? top = c.Has("partial_rotary_factor") ? c.Double("partial_rotary_factor", 1.0) : null;
        if (inner is { } a && top is { } b && a != b)
            throw c.Error($"config fields \"partial_rotary_factor\" = {b} and \"rope_parameters.partial_rotary_factor\" = {a} disagree for model_type \"phi3\"");
        double factor = inner ?? top ?? 1.0;
        if (!(factor > 0 && factor <= 1)) throw c.Error($"field \"partial_rotary_factor\" must be in (0, 1], got {factor}");
        var (theta, scaling) = RopeScaling.Read(new ConfigJson(copy, c.Source), "phi3", 10000.0);
        return (theta, scaling, factor);
    }

    static void RenameLegacyType(JsonObject scaling)
    {
        foreach (var key in new[] { "rope_type", "type" })
            if (scaling[key] is JsonValue v && v.TryGetValue<string>(out var type) && type is "su" or "yarn")
                scaling[key] = "longrope";
    }

    public void WriteConfig(ModelConfig config, JsonObject json)
    {
        var settings = Phi3Settings.Of(config);
        json["vocab_size"] = config.VocabSize;
        json["hidden_size"] = config.HiddenSize;
        json["intermediate_size"] = config.IntermediateSize;
        json["num_hidden_layers"] = config.NumLayers;
        json["num_attention_heads"] = config.NumHeads;
        json["num_key_value_heads"] = config.NumKvHeads;
        json["max_position_embeddings"] = config.MaxPositions;
        json["original_max_position_embeddings"] = settings.OriginalMaxPositions;
        json["rope_theta"] = config.RopeTheta;
        if (config.RopeScaling is { } scaling)
        {
            var written = scaling.ToJson();
            written.Remove("original_max_position_embeddings"); // top level, where Phi3Config keeps it
            json["rope_scaling"] = written;
        }
        else json["rope_scaling"] = null;
        json["partial_rotary_factor"] = settings.PartialRotaryFactor;
        json["sliding_window"] = config.SlidingWindow is { } w ? w : null;
        json["rms_norm_eps"] = config.NormEps;
        json["hidden_act"] = "silu";
    }

    public void Validate(ModelConfig config, string source)
    {
        var settings = Phi3Settings.Of(config);
        int rotaryDims = settings.RotaryDims(config);
        if (config.HasExplicitHeadDim && config.HeadDim * config.NumHeads != config.HiddenSize)
            throw new PargsException($"{source}: Phi-3 heads split hidden_size evenly; head_dim {config.HeadDim} cannot apply");
        if (rotaryDims < 2 || rotaryDims % 2 != 0)
            throw new PargsException($"{source}: the rotated part of each head (int(head_dim {config.HeadDim} × partial_rotary_factor {settings.PartialRotaryFactor}) = {rotaryDims}) must be even and at least 2");
        if (config.RopeScaling is { ShortFactor: { } shortFactor, LongFactor: { } longFactor } && (shortFactor.Count != rotaryDims / 2 || longFactor.Count != rotaryDims / 2))
            throw new PargsException($"{source}: rope_scaling short_factor and long_factor need {rotaryDims / 2} entries (rotated dimensions / 2), got {shortFactor.Count} and {longFactor.Count}");
        if (config.RopeScaling is { Type: not "longrope" })
            throw new PargsException($"{source}: model_type \"phi3\" runs longrope or the default rotary, not rope_type \"{config.RopeScaling.Type}\"");
        if (config.AttentionBias || config.AttentionOutputBias || config.QkNorm)
            throw new PargsException($"{source}: Phi-3's projections have no biases and its heads no q/k norms");
    }

    public TransformerBackbone CreateBackbone(ModelConfig config) => new Phi3Model(config);

    public IReadOnlyList<TensorSpec> BackboneTensors(ModelConfig c)
    {
        long h = c.HiddenSize, ff = c.IntermediateSize, q = c.NumHeads * c.HeadDim;
        var list = new List<TensorSpec> { new("embed_tokens.weight", [c.VocabSize, h]) };
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"layers.{i}.";
            list.Add(new(p + "input_layernorm.weight", [h]));
            list.Add(new(p + "self_attn.qkv_proj.weight", [q + 2L * c.KvDim, h]));
            list.Add(new(p + "self_attn.o_proj.weight", [h, q]));
            list.Add(new(p + "post_attention_layernorm.weight", [h]));
            list.Add(new(p + "mlp.gate_up_proj.weight", [2 * ff, h]));
            list.Add(new(p + "mlp.down_proj.weight", [h, ff]));
        }
        list.Add(new("norm.weight", [h]));
        return list;
    }

    /// <summary>
    /// No CPU kernel yet: <see cref="LlamaDecodeKernel"/> reads separate q/k/v and gate/up matrices and rotates whole
    /// heads; Phi-3 decodes through its torch modules (the reference path), with column-major weights.
    /// </summary>
    public IDecodeKernel? CreateDecodeKernel(TransformerBackbone backbone) => backbone is Phi3Model model ? Phi3DecodeKernel.For(model) : null;

    public bool DecodesColumnMajor => false;

    public IEnumerable<(string Field, object? Value)> DescribeConfig(ModelConfig config)
    {
        var settings = Phi3Settings.Of(config);
        yield return ("rope_theta", config.RopeTheta);
        yield return ("rope_scaling", config.RopeScaling?.ToJson().ToJsonString() ?? "default");
        yield return ("original_max_position_embeddings", settings.OriginalMaxPositions);
        yield return ("partial_rotary_factor", settings.PartialRotaryFactor);
        yield return ("sliding_window", config.SlidingWindow?.ToString() ?? "none");
        yield return ("rms_norm_eps", config.NormEps);
    }
}
