using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Pargs.Models.Families.GptNeoX;

/// <summary>
/// GPT-NeoX and Pythia (model_type gpt_neox): LayerNorm with bias, rotary on rotary_pct of each head (base
/// rotary_emb_base), the per-head fused query_key_value, attention.dense, a GELU MLP with biases, parallel or
/// sequential residual, and an untied head that transformers calls <c>embed_out</c> (Pargs' <c>lm_head</c>, renamed on
/// the way in and out). The reward model is GPTNeoXForSequenceClassification (a <c>score</c> head on "gpt_neox").
/// </summary>
public sealed class GptNeoXFamily : IModelFamily
{
    public const string CausalLM = "GPTNeoXForCausalLM", SequenceClassification = "GPTNeoXForSequenceClassification";
    /// <summary>transformers' name for the causal LM's output matrix.</summary>
    public const string HeadName = "embed_out.weight";

    public string Name => "gpt_neox";
    public IReadOnlyList<string> ModelTypes { get; } = ["gpt_neox"];
    public string HuggingFacePrefix => "gpt_neox";
    public IReadOnlyList<string> Architectures { get; } = [CausalLM, SequenceClassification];
    public string CausalLMArchitecture(ModelConfig config) => CausalLM;
    public string SequenceClassificationArchitecture(ModelConfig config) => SequenceClassification;

    public IReadOnlyList<ConfigField> ConfigFields(string modelType) =>
    [
        new("vocab_size", ConfigFieldUse.Honoured), new("hidden_size", ConfigFieldUse.Honoured),
        new("intermediate_size", ConfigFieldUse.Honoured), new("num_hidden_layers", ConfigFieldUse.Honoured),
        new("num_attention_heads", ConfigFieldUse.Honoured), new("max_position_embeddings", ConfigFieldUse.Honoured, "the context Pargs allows"),
        new("rotary_pct", ConfigFieldUse.Honoured, "rotary on int(head_size · rotary_pct) dimensions (0.25 when absent)"),
        new("rotary_emb_base", ConfigFieldUse.Honoured, "the rotary theta (10000 when absent)"),
        new("rope_theta", ConfigFieldUse.Honoured, "read as rotary_emb_base"),
        new("rope_scaling", ConfigFieldUse.Honoured, string.Join(", ", RopeScaling.Types) + ", over the rotated dimensions"),
        new("rope_parameters", ConfigFieldUse.Honoured, "rope_theta, rope_type, partial_rotary_factor (= rotary_pct) and the type's keys"),
        new("use_parallel_residual", ConfigFieldUse.Honoured, "true: x + attn(ln1(x)) + mlp(ln2(x)); false: sequential"),
        new("hidden_act", ConfigFieldUse.Honoured, string.Join(", ", GptNeoXSettings.Activations) + " (gelu is exact; the others the tanh form)"),
        new("layer_norm_eps", ConfigFieldUse.Honoured), new("attention_bias", ConfigFieldUse.Honoured, "query_key_value and dense biases (true when absent)"),
        new("tie_word_embeddings", ConfigFieldUse.Honoured), new("bos_token_id", ConfigFieldUse.Honoured),
        new("eos_token_id", ConfigFieldUse.Honoured, "one id or a list"), new("pad_token_id", ConfigFieldUse.Honoured, "the reward model's padding"),
        new("head_dim", ConfigFieldUse.RefusedUnlessDefault, "hidden_size / num_attention_heads"),
        new("quantization_config", ConfigFieldUse.RefusedUnlessDefault, "absent"),
        new("attention_dropout", ConfigFieldUse.Irrelevant, "training only"), new("hidden_dropout", ConfigFieldUse.Irrelevant, "training only"),
        new("classifier_dropout", ConfigFieldUse.Irrelevant, "training only"), new("initializer_range", ConfigFieldUse.Irrelevant, "initialisation only"),
        new("is_decoder", ConfigFieldUse.Irrelevant), new("use_cache", ConfigFieldUse.Irrelevant),
        new("torch_dtype", ConfigFieldUse.Irrelevant, "weights load as float32"), new("dtype", ConfigFieldUse.Irrelevant, "weights load as float32"),
        new("transformers_version", ConfigFieldUse.Irrelevant),
    ];

    public ModelConfig ReadConfig(JsonObject json, string source)
    {
        var c = new ConfigJson(json, source);
        PargsException Refuse(string field, string why = "") =>
            c.Error($"config field \"{field}\" = {json[field]!.ToJsonString()} is not supported for model_type \"gpt_neox\"{why}");
        string act = c.String("hidden_act") ?? "gelu";
        if (!GptNeoXSettings.Activations.Contains(act)) throw Refuse("hidden_act", $" (Pargs runs {string.Join(", ", GptNeoXSettings.Activations)})");
        if (c.Has("quantization_config")) throw Refuse("quantization_config", " (load dequantized weights)");

        // GPTNeoXConfig's defaults (the 20B model).
        int hidden = c.Int("hidden_size", 6144), heads = c.Int("num_attention_heads", 64);
        if (c.OptionalInt("head_dim") is { } headDim && (heads <= 0 || headDim * heads != hidden)) throw Refuse("head_dim", " (GPT-NeoX heads split hidden_size evenly)");

        // rotary_pct / rotary_emb_base are GPT-NeoX's names; transformers v5 writes them into rope_parameters as
        // partial_rotary_factor / rope_theta. RopeScaling reads theta and the scaling; the rotated share is read here.
        var copy = json.DeepClone().AsObject();
        double? innerPct = null;
        if (copy["rope_parameters"] is JsonObject parameters)
        {
            var p = new ConfigJson(parameters, source + " rope_parameters");
            if (p.Has("partial_rotary_factor")) innerPct = p.Double("partial_rotary_factor", 0.25);
            parameters.Remove("partial_rotary_factor");
        }
        double? topPct = c.Has("rotary_pct") ? c.Double("rotary_pct", 0.25) : null;
        if (innerPct is { } a && topPct is { } b && a != b)
            throw c.Error($"config fields \"rotary_pct\" = {b} and \"rope_parameters.partial_rotary_factor\" = {a} disagree for model_type \"gpt_neox\"");
        double rotaryPct = innerPct ?? topPct ?? 0.25;
        if (!(rotaryPct > 0 && rotaryPct <= 1)) throw c.Error($"field \"rotary_pct\" must be in (0, 1], got {rotaryPct}");
        var (theta, scaling) = RopeScaling.Read(new ConfigJson(copy, source), "gpt_neox", c.Double("rotary_emb_base", 10000.0));

        bool bias = c.Bool("attention_bias", true);
        int[] eos = c.Has("eos_token_id") ? c.TokenIds("eos_token_id") : [2];
        return new ModelConfig
        {
            ModelType = "gpt_neox",
            VocabSize = c.Int("vocab_size", 50432),
            HiddenSize = hidden,
            IntermediateSize = c.Int("intermediate_size", 24576),
            NumLayers = c.Int("num_hidden_layers", 44),
            NumHeads = heads,
            NumKvHeads = heads,
            MaxPositions = c.Int("max_position_embeddings", 2048),
            RopeTheta = theta,
            RopeScaling = scaling,
            NormEps = c.Double("layer_norm_eps", 1e-5),
            TieWordEmbeddings = c.Bool("tie_word_embeddings", false),
            AttentionBias = bias,
            AttentionOutputBias = bias,
            BosTokenId = c.Has("bos_token_id") ? c.TokenId("bos_token_id") : 0,
            EosTokenId = eos.Length > 0 ? eos[0] : null,
            MoreEosTokenIds = new ValueList<int>(eos.Skip(1)),
            PadTokenId = c.TokenId("pad_token_id"),
            Extras = new GptNeoXSettings(rotaryPct, c.Bool("use_parallel_residual", true), act),
        };
    }

    public void WriteConfig(ModelConfig config, JsonObject json)
    {
        var settings = GptNeoXSettings.Of(config);
        json["vocab_size"] = config.VocabSize;
        json["hidden_size"] = config.HiddenSize;
        json["intermediate_size"] = config.IntermediateSize;
        json["num_hidden_layers"] = config.NumLayers;
        json["num_attention_heads"] = config.NumHeads;
        json["max_position_embeddings"] = config.MaxPositions;
        json["rotary_pct"] = settings.RotaryPct;
        json["rotary_emb_base"] = config.RopeTheta;
        if (config.RopeScaling is { } scaling) json["rope_scaling"] = scaling.ToJson();
        json["use_parallel_residual"] = settings.UseParallelResidual;
        json["hidden_act"] = settings.HiddenAct;
        json["layer_norm_eps"] = config.NormEps;
        json["attention_bias"] = config.AttentionBias;
    }

    public void Validate(ModelConfig config, string source)
    {
        var settings = GptNeoXSettings.Of(config);
        int rotaryDims = settings.RotaryDims(config);
        if (config.HasExplicitHeadDim && config.HeadDim * config.NumHeads != config.HiddenSize)
            throw new PargsException($"{source}: GPT-NeoX heads split hidden_size evenly; head_dim {config.HeadDim} cannot apply");
        if (rotaryDims < 2 || rotaryDims % 2 != 0)
            throw new PargsException($"{source}: the rotated part of each head (int(head_size {config.HeadDim} × rotary_pct {settings.RotaryPct}) = {rotaryDims}) must be even and at least 2");
        if (config.RopeScaling is { ShortFactor: { } shortFactor, LongFactor: { } longFactor } && (shortFactor.Count != rotaryDims / 2 || longFactor.Count != rotaryDims / 2))
            throw new PargsException($"{source}: rope_scaling short_factor and long_factor need {rotaryDims / 2} entries (rotated dimensions / 2), got {shortFactor.Count} and {longFactor.Count}");
        if (config.NumKvHeads != config.NumHeads || config.SlidingWindow is not null || config.QkNorm || config.AttentionBias != config.AttentionOutputBias)
            throw new PargsException($"{source}: a gpt_neox config has one key/value head per query head, full attention, no q/k norms, and attention_bias on query_key_value and dense together");
        if (!GptNeoXSettings.Activations.Contains(settings.HiddenAct))
            throw new PargsException($"{source}: hidden_act \"{settings.HiddenAct}\" is not supported for model_type \"gpt_neox\"");
    }

    public TransformerBackbone CreateBackbone(ModelConfig config) => new GptNeoXModel(config);

    public IReadOnlyList<TensorSpec> BackboneTensors(ModelConfig c)
    {
        long h = c.HiddenSize, ff = c.IntermediateSize;
        var list = new List<TensorSpec> { new("embed_in.weight", [c.VocabSize, h]) };
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"layers.{i}.";
            list.Add(new(p + "input_layernorm.weight", [h]));
            list.Add(new(p + "input_layernorm.bias", [h]));
            list.Add(new(p + "post_attention_layernorm.weight", [h]));
            list.Add(new(p + "post_attention_layernorm.bias", [h]));
            list.Add(new(p + "attention.query_key_value.weight", [3 * h, h]));
            if (c.AttentionBias) list.Add(new(p + "attention.query_key_value.bias", [3 * h]));
            list.Add(new(p + "attention.dense.weight", [h, h]));
            if (c.AttentionBias) list.Add(new(p + "attention.dense.bias", [h]));
            list.Add(new(p + "mlp.dense_h_to_4h.weight", [ff, h]));
            list.Add(new(p + "mlp.dense_h_to_4h.bias", [ff]));
            list.Add(new(p + "mlp.dense_4h_to_h.weight", [h, ff]));
            list.Add(new(p + "mlp.dense_4h_to_h.bias", [h]));
        }
        list.Add(new("final_layer_norm.weight", [h]));
        list.Add(new("final_layer_norm.bias", [h]));
        return list;
    }

    /// <summary>
    /// transformers' GPTNeoXForCausalLM names its head <c>embed_out</c>: it becomes <c>lm_head</c> here. Old checkpoints
    /// also carry the causal-mask and rotary buffers (<c>attention.bias</c>, <c>attention.masked_bias</c>,
    /// <c>rotary_emb.inv_freq</c>), which are recomputed, not parameters: they are dropped.
    /// </summary>
    public void NormaliseTensorNames(Dictionary<string, Tensor> tensors, ModelConfig config, string? architecture)
    {
        foreach (var name in tensors.Keys.ToList())
        {
            if (name.EndsWith(".attention.bias", StringComparison.Ordinal) || name.EndsWith(".attention.masked_bias", StringComparison.Ordinal)
                || name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal))
            {
                tensors.Remove(name, out var buffer);
                buffer!.Dispose();
            }
        }
        if (tensors.Remove(HeadName, out var head))
        {
            if (tensors.ContainsKey("lm_head.weight"))
            {
                head.Dispose();
                throw new PargsException($"the checkpoint holds both \"{HeadName}\" and \"lm_head.weight\"; a GPT-NeoX causal LM has one head");
            }
            tensors["lm_head.weight"] = head;
        }
    }

    /// <summary>The causal LM's head goes back to transformers' name, so GPTNeoXForCausalLM loads what Pargs saves.</summary>
    public IReadOnlyDictionary<string, Tensor> TensorsForSaving(IReadOnlyDictionary<string, Tensor> tensors, ModelConfig config, string architecture)
        => architecture == CausalLM && tensors.ContainsKey("lm_head.weight")
            ? tensors.ToDictionary(p => p.Key == "lm_head.weight" ? HeadName : p.Key, p => p.Value, StringComparer.Ordinal)
            : tensors;

    /// <summary>GPT-NeoX decodes on the Llama kernel with its layer form as hooks (<see cref="GptNeoXDecodeKernel"/>).</summary>
    public IDecodeKernel? CreateDecodeKernel(TransformerBackbone backbone) => backbone is GptNeoXModel model ? GptNeoXDecodeKernel.For(model) : null;

    public bool DecodesColumnMajor => false;

    public IEnumerable<(string Field, object? Value)> DescribeConfig(ModelConfig config)
    {
        var settings = GptNeoXSettings.Of(config);
        yield return ("rotary_pct", settings.RotaryPct);
        yield return ("rotary_emb_base", config.RopeTheta);
        yield return ("rope_scaling", config.RopeScaling?.ToJson().ToJsonString() ?? "default");
        yield return ("use_parallel_residual", settings.UseParallelResidual);
        yield return ("hidden_act", settings.HiddenAct);
        yield return ("layer_norm_eps", config.NormEps);
        yield return ("attention_bias", config.AttentionBias);
    }
}
