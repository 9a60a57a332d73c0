using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gpt2;

/// <summary>GPT-2: learned positions, LayerNorm with biases, fused c_attn, Conv1D weights. Decodes through torch ops.</summary>
public sealed class Gpt2Family : IModelFamily
{
    public const string CausalLM = "GPT2LMHeadModel", SequenceClassification = "GPT2ForSequenceClassification";

    public string Name => "gpt2";
    public IReadOnlyList<string> ModelTypes { get; } = ["gpt2"];
    public string HuggingFacePrefix => "transformer";
    public IReadOnlyList<string> Architectures { get; } = [CausalLM, SequenceClassification];
    public string CausalLMArchitecture(ModelConfig config) => CausalLM;
    public string SequenceClassificationArchitecture(ModelConfig config) => SequenceClassification;

    public IReadOnlyList<ConfigField> ConfigFields(string modelType) =>
    [
        new("vocab_size", ConfigFieldUse.Honoured), new("n_embd", ConfigFieldUse.Honoured), new("n_layer", ConfigFieldUse.Honoured),
        new("n_head", ConfigFieldUse.Honoured), new("n_inner", ConfigFieldUse.Honoured, "null = 4 × n_embd"),
        new("n_positions", ConfigFieldUse.Honoured), new("layer_norm_epsilon", ConfigFieldUse.Honoured),
        new("tie_word_embeddings", ConfigFieldUse.Honoured), new("bos_token_id", ConfigFieldUse.Honoured),
        new("eos_token_id", ConfigFieldUse.Honoured, "one id or a list"), new("pad_token_id", ConfigFieldUse.Honoured),
        new("activation_function", ConfigFieldUse.RefusedUnlessDefault, "gelu_new (or gelu_pytorch_tanh, the same function)"),
        new("scale_attn_weights", ConfigFieldUse.RefusedUnlessDefault, "true"),
        new("scale_attn_by_inverse_layer_idx", ConfigFieldUse.RefusedUnlessDefault, "false"),
        new("add_cross_attention", ConfigFieldUse.RefusedUnlessDefault, "false"),
        new("quantization_config", ConfigFieldUse.RefusedUnlessDefault, "absent"),
        new("reorder_and_upcast_attn", ConfigFieldUse.Irrelevant, "Pargs computes in float32 already"),
        new("n_ctx", ConfigFieldUse.Irrelevant, "n_positions is the context"),
        new("resid_pdrop", ConfigFieldUse.Irrelevant, "training only"), new("embd_pdrop", ConfigFieldUse.Irrelevant, "training only"),
        new("attn_pdrop", ConfigFieldUse.Irrelevant, "training only"), new("initializer_range", ConfigFieldUse.Irrelevant),
        new("summary_type", ConfigFieldUse.Irrelevant, "GPT2DoubleHeadsModel only"), new("use_cache", ConfigFieldUse.Irrelevant),
        new("torch_dtype", ConfigFieldUse.Irrelevant, "weights load as float32"),
    ];

    public ModelConfig ReadConfig(JsonObject json, string source)
    {
        var c = new ConfigJson(json, source);
        PargsException Refuse(string field) => c.Error($"config field \"{field}\" = {json[field]!.ToJsonString()} is not supported for model_type \"gpt2\"");
        if (c.String("activation_function") is { } act && act is not ("gelu_new" or "gelu_pytorch_tanh")) throw Refuse("activation_function");
        if (!c.Bool("scale_attn_weights", true)) throw Refuse("scale_attn_weights");
        if (c.Bool("scale_attn_by_inverse_layer_idx", false)) throw Refuse("scale_attn_by_inverse_layer_idx");
        if (c.Bool("add_cross_attention", false)) throw Refuse("add_cross_attention");
        if (c.Has("quantization_config")) throw Refuse("quantization_config");
        int[] eos = c.TokenIds("eos_token_id");
        // GPT2Config's defaults (the 124M model) for absent fields.
        int hidden = c.Int("n_embd", 768);
        int heads = c.Int("n_head", 12);
        int? inner = json["n_inner"] is { } n && n.GetValueKind() == JsonValueKind.Number ? c.Int("n_inner") : null;
        return new ModelConfig
        {
            ModelType = "gpt2",
            VocabSize = c.Int("vocab_size", 50257),
            HiddenSize = hidden,
            IntermediateSize = inner ?? 4 * hidden,
            NumLayers = c.Int("n_layer", 12),
            NumHeads = heads,
            NumKvHeads = heads,
            MaxPositions = c.Int("n_positions", 1024),
            NormEps = c.Double("layer_norm_epsilon", 1e-5),
            TieWordEmbeddings = c.Bool("tie_word_embeddings", true),
            BosTokenId = c.TokenId("bos_token_id"),
            EosTokenId = eos.Length > 0 ? eos[0] : null,
            MoreEosTokenIds = new ValueList<int>(eos.Skip(1)),
            PadTokenId = c.TokenId("pad_token_id"),
        };
    }

    public void WriteConfig(ModelConfig config, JsonObject json)
    {
        json["vocab_size"] = config.VocabSize;
        json["n_embd"] = config.HiddenSize;
        json["n_inner"] = config.IntermediateSize;
        json["n_layer"] = config.NumLayers;
        json["n_head"] = config.NumHeads;
        json["n_positions"] = config.MaxPositions;
        json["n_ctx"] = config.MaxPositions;
        json["layer_norm_epsilon"] = config.NormEps;
        json["activation_function"] = "gelu_new";
    }

    public void Validate(ModelConfig config, string source)
    {
        if (config.HasExplicitHeadDim && config.HeadDim * config.NumHeads != config.HiddenSize)
            throw new PargsException($"{source}: GPT-2 heads split n_embd evenly; head_dim {config.HeadDim} cannot apply");
        if (config.RopeScaling is not null || config.SlidingWindow is not null)
            throw new PargsException($"{source}: GPT-2 has learned positions and full attention (no rope_scaling or sliding_window)");
    }

    public TransformerBackbone CreateBackbone(ModelConfig config) => new Gpt2Model(config);

    public IReadOnlyList<TensorSpec> BackboneTensors(ModelConfig c)
    {
        long h = c.HiddenSize, ff = c.IntermediateSize;
        var list = new List<TensorSpec> { new("wte.weight", [c.VocabSize, h]), new("wpe.weight", [c.MaxPositions, h]) };
        for (int i = 0; i < c.NumLayers; i++)
        {
            // GPT-2 uses Conv1D: weights are stored [in, out], the transpose of nn.Linear.
            string p = $"h.{i}.";
            list.Add(new(p + "ln_1.weight", [h]));
            list.Add(new(p + "ln_1.bias", [h]));
            list.Add(new(p + "attn.c_attn.weight", [h, 3 * h]));
            list.Add(new(p + "attn.c_attn.bias", [3 * h]));
            list.Add(new(p + "attn.c_proj.weight", [h, h]));
            list.Add(new(p + "attn.c_proj.bias", [h]));
            list.Add(new(p + "ln_2.weight", [h]));
            list.Add(new(p + "ln_2.bias", [h]));
            list.Add(new(p + "mlp.c_fc.weight", [h, ff]));
            list.Add(new(p + "mlp.c_fc.bias", [ff]));
            list.Add(new(p + "mlp.c_proj.weight", [ff, h]));
            list.Add(new(p + "mlp.c_proj.bias", [h]));
        }
        list.Add(new("ln_f.weight", [h]));
        list.Add(new("ln_f.bias", [h]));
        return list;
    }

    /// <summary>
    /// GPT-2 checkpoints on the Hub name parameters without the <c>transformer.</c> prefix (they were saved
    /// from GPT2Model); GPT2LMHeadModel expects it. The causal-mask buffers (<c>attn.bias</c>,
    /// <c>attn.masked_bias</c>) are not parameters and are dropped. A tied LM head gets its own view of wte.
    /// </summary>
    public void NormaliseTensorNames(Dictionary<string, Tensor> tensors, ModelConfig config, string? architecture)
    {
        foreach (var name in tensors.Keys.ToList())
        {
            var t = tensors[name];
            if (name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal))
            {
                tensors.Remove(name);
                t.Dispose();
                continue;
            }
            if (name.StartsWith("transformer.", StringComparison.Ordinal) || name.StartsWith("lm_head.", StringComparison.Ordinal)
                || name.StartsWith("score.", StringComparison.Ordinal))
                continue;
            tensors.Remove(name);
            tensors["transformer." + name] = t;
        }
        bool causal = architecture is null || architecture == CausalLM;
        if (causal && config.TieWordEmbeddings && !tensors.ContainsKey("lm_head.weight")
            && tensors.TryGetValue("transformer.wte.weight", out var wte))
            tensors["lm_head.weight"] = wte.alias(); // same storage, own handle (disposed separately)
    }

    public bool DecodesColumnMajor => true;

    public IEnumerable<(string Field, object? Value)> DescribeConfig(ModelConfig config)
    {
        yield return ("layer_norm_epsilon", config.NormEps);
        yield return ("activation_function", "gelu_new");
    }
}
