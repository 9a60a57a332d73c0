using Pargs.Json;

namespace Pargs.Models.Encoders;

/// <summary>
/// Reads an encoder classifier's config.json with transformers' defaults for its model type (BertConfig,
/// RobertaConfig, DistilBertConfig, DebertaV2Config). A field that would change the computation is honoured or
/// refused with one line naming it; dropout, initialisation and output switches do not change inference and are
/// ignored.
/// </summary>
public static class EncoderConfigReader
{
    /// <summary>The model types this reader knows, with the …ForSequenceClassification class each must name.</summary>
    public static readonly IReadOnlyDictionary<string, string> Architectures = new Dictionary<string, string>
    {
        ["bert"] = "BertForSequenceClassification",
        ["roberta"] = "RobertaForSequenceClassification",
        ["distilbert"] = "DistilBertForSequenceClassification",
        ["deberta-v2"] = "DebertaV2ForSequenceClassification",
    };

    /// <summary>True when config.json at <paramref name="configPath"/> names an encoder model type.</summary>
    public static bool IsEncoder(string configPath)
    {
        var json = CheckedJson.ReadFile(configPath).Object();
        return json["model_type"].StringOrNull() is { } type && Architectures.ContainsKey(type);
    }

    /// <summary>
    /// The pretrained-encoder classes a reward model may <b>start</b> from (train-rm): the bare model and its pre-training
    /// heads. Their weights hold the encoder; the classification head is new, as transformers' from_pretrained makes it.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string[]> BaseArchitectures = new Dictionary<string, string[]>
    {
        ["bert"] = ["BertModel", "BertForMaskedLM", "BertForPreTraining"],
        ["roberta"] = ["RobertaModel", "RobertaForMaskedLM"],
        ["distilbert"] = ["DistilBertModel", "DistilBertForMaskedLM"],
        ["deberta-v2"] = ["DebertaV2Model", "DebertaV2ForMaskedLM"],
    };

    public static EncoderConfig Read(string configPath, bool allowBase = false) => Read(CheckedJson.ReadFile(configPath).Object(), allowBase);

    /// <param name="allowBase">Also accept a pretrained encoder (<see cref="BaseArchitectures"/>); its config is returned
    /// as the …ForSequenceClassification one, whose head the caller initialises.</param>
    public static EncoderConfig Read(CheckedJson json, bool allowBase = false)
    {
        string modelType = json["model_type"].String();
        if (!Architectures.TryGetValue(modelType, out var architecture))
            throw json["model_type"].Error($"\"{modelType}\" is not an encoder Pargs runs (expected {string.Join(", ", Architectures.Keys)})");
        string given = json["architectures"].IsMissing ? architecture : json["architectures"][0].String();
        if (given != architecture && !(allowBase && BaseArchitectures[modelType].Contains(given)))
            throw json["architectures"].Error($"{given} is not supported for model_type \"{modelType}\": Pargs runs encoders as reward models, i.e. {architecture}" +
                                              (allowBase ? $", and trains them from that or a pretrained {string.Join(" / ", BaseArchitectures[modelType])}" : ""));

        // Fields of PretrainedConfig that change what the model computes.
        if (!json["quantization_config"].IsMissing) throw json["quantization_config"].Error("quantized encoders are not supported (use float32/float16/bfloat16 safetensors)");
        if (json["is_decoder"].Bool(false)) throw json["is_decoder"].Error("true is not supported (a causal mask on an encoder); Pargs runs encoders bidirectionally");
        if (json["add_cross_attention"].Bool(false)) throw json["add_cross_attention"].Error("true is not supported (cross-attention layers)");
        if (json["pruned_heads"].ObjectOrNull() is { } pruned && pruned.Fields().Any())
            throw json["pruned_heads"].Error("pruned attention heads are not supported");

        var (labels, multiLabel) = ReadLabels(json);
        var config = modelType switch
        {
            "distilbert" => ReadDistilBert(json),
            "deberta-v2" => ReadDeberta(json),
            _ => ReadBert(json, modelType),
        };
        config = config with { Architecture = architecture, Labels = labels, MultiLabel = multiLabel };
        Validate(config, json);
        return config;
    }

    static EncoderConfig ReadBert(CheckedJson json, string modelType)
    {
        if (json["position_embedding_type"].StringOrNull() is { } p && p != "absolute")
            throw json["position_embedding_type"].Error($"\"{p}\" is not supported (only \"absolute\" position embeddings)");
        bool roberta = modelType == "roberta";
        int hidden = json["hidden_size"].Int(768, 1, 1 << 20);
        int heads = json["num_attention_heads"].Int(12, 1, 1 << 16);
        return new EncoderConfig
        {
            ModelType = modelType,
            Architecture = "",
            Labels = [],
            VocabSize = json["vocab_size"].Int(roberta ? 50265 : 30522, 1, 1 << 24),
            HiddenSize = hidden,
            NumLayers = json["num_hidden_layers"].Int(12, 1, 1 << 12),
            NumHeads = heads,
            HeadDim = hidden / heads,
            IntermediateSize = json["intermediate_size"].Int(3072, 1, 1 << 22),
            MaxPositionEmbeddings = json["max_position_embeddings"].Int(512, 1, 1 << 22),
            TypeVocabSize = json["type_vocab_size"].Int(2, 0, 1 << 16),
            LayerNormEps = json["layer_norm_eps"].Double(1e-12, 0, 1),
            Activation = Activation(json, "hidden_act", "gelu"),
            PadTokenId = json["pad_token_id"].Int(roberta ? 1 : 0, 0, 1 << 24),
        };
    }

    static EncoderConfig ReadDistilBert(CheckedJson json)
    {
        // sinusoidal_pos_embds only changes how the position table is initialised; the table is in the checkpoint.
        int dim = json["dim"].Int(768, 1, 1 << 20);
        int heads = json["n_heads"].Int(12, 1, 1 << 16);
        return new EncoderConfig
        {
            ModelType = "distilbert",
            Architecture = "",
            Labels = [],
            VocabSize = json["vocab_size"].Int(30522, 1, 1 << 24),
            HiddenSize = dim,
            NumLayers = json["n_layers"].Int(6, 1, 1 << 12),
            NumHeads = heads,
            HeadDim = dim / heads,
            IntermediateSize = json["hidden_dim"].Int(3072, 1, 1 << 22),
            MaxPositionEmbeddings = json["max_position_embeddings"].Int(512, 1, 1 << 22),
            TypeVocabSize = 0,
            LayerNormEps = 1e-12, // fixed in DistilBERT's modules
            Activation = Activation(json, "activation", "gelu"),
            PadTokenId = json["pad_token_id"].Int(0, 0, 1 << 24),
        };
    }

    static EncoderConfig ReadDeberta(CheckedJson json)
    {
        if (json["conv_kernel_size"].Int(0, 0, 1 << 10) > 0)
            throw json["conv_kernel_size"].Error("the convolution layer beside the first encoder layer (DeBERTa-v2 xlarge/xxlarge) is not supported");
        int hidden = json["hidden_size"].Int(1536, 1, 1 << 20);
        int heads = json["num_attention_heads"].Int(24, 1, 1 << 16);
        int headDim = json["attention_head_size"].Int(hidden / heads, 1, 1 << 16);
        if (heads * headDim != hidden)
            throw json["attention_head_size"].Error($"{headDim} × {heads} heads ≠ hidden_size {hidden} is not supported (the attention output projection is hidden × hidden)");
        int maxPositions = json["max_position_embeddings"].Int(512, 1, 1 << 22);
        int maxRelative = json["max_relative_positions"].Int(-1, int.MinValue, 1 << 22);
        if (maxRelative < 1) maxRelative = maxPositions;
        var posAttType = PosAttType(json);
        var norm = (json["norm_rel_ebd"].StringOrNull() ?? "none").ToLowerInvariant().Split('|').Select(s => s.Trim()).ToArray();
        if (norm.Any(n => n is not ("none" or "layer_norm")))
            throw json["norm_rel_ebd"].Error($"\"{string.Join('|', norm)}\" is not supported (expected \"none\" or \"layer_norm\")");
        int poolerHidden = json["pooler_hidden_size"].Int(hidden, 1, 1 << 20);
        if (poolerHidden != hidden)
            throw json["pooler_hidden_size"].Error($"{poolerHidden} ≠ hidden_size {hidden} is not supported (the ContextPooler reads the hidden state of [CLS])");
        return new EncoderConfig
        {
            ModelType = "deberta-v2",
            Architecture = "",
            Labels = [],
            VocabSize = json["vocab_size"].Int(128100, 1, 1 << 24),
            HiddenSize = hidden,
            NumLayers = json["num_hidden_layers"].Int(24, 1, 1 << 12),
            NumHeads = heads,
            HeadDim = headDim,
            IntermediateSize = json["intermediate_size"].Int(6144, 1, 1 << 22),
            MaxPositionEmbeddings = maxPositions,
            TypeVocabSize = json["type_vocab_size"].Int(0, 0, 1 << 16),
            LayerNormEps = json["layer_norm_eps"].Double(1e-7, 0, 1),
            Activation = Activation(json, "hidden_act", "gelu"),
            PadTokenId = json["pad_token_id"].Int(0, 0, 1 << 24),
            Deberta = new DebertaSettings
            {
                EmbeddingSize = json["embedding_size"].Int(hidden, 1, 1 << 20),
                RelativeAttention = json["relative_attention"].Bool(false),
                MaxRelativePositions = maxRelative,
                PositionBuckets = json["position_buckets"].Int(-1, int.MinValue, 1 << 20),
                C2P = posAttType.Contains("c2p"),
                P2C = posAttType.Contains("p2c"),
                ShareAttKey = json["share_att_key"].Bool(false),
                PositionBiasedInput = json["position_biased_input"].Bool(true),
                NormRelEmbeddings = norm.Contains("layer_norm"),
                PoolerActivation = Activation(json, "pooler_hidden_act", "gelu"),
            },
        };
    }

    /// <summary>pos_att_type: a list, or a "p2c|c2p" string as DebertaV2Config accepts; only c2p and p2c exist in v2.</summary>
    static string[] PosAttType(CheckedJson json)
    {
        var field = json["pos_att_type"];
        if (field.IsMissing) return [];
        var kinds = field.IsString ? field.String().ToLowerInvariant().Split('|').Select(s => s.Trim()).ToArray() : field.StringList(16);
        foreach (var kind in kinds)
            if (kind is not ("c2p" or "p2c"))
                throw field.Error($"\"{kind}\" is not supported (DeBERTa-v2 knows c2p and p2c)");
        return kinds;
    }

    static EncoderActivation Activation(CheckedJson json, string field, string fallback)
    {
        string name = json[field].StringOrNull() ?? fallback;
        return EncoderActivations.Parse(name) ?? throw json[field].Error($"\"{name}\" is not supported (expected gelu, gelu_new, gelu_pytorch_tanh, relu or tanh)");
    }

    /// <summary>id2label (keys "0".."n-1"), else num_labels (default 2) labels named LABEL_i as transformers names them.</summary>
    static (string[] Labels, bool MultiLabel) ReadLabels(CheckedJson json)
    {
        string[] labels;
        if (json["id2label"].ObjectOrNull() is { } map && map.Fields().Any())
        {
            var fields = map.Fields().ToList();
            labels = new string[fields.Count];
            foreach (var (key, value) in fields)
            {
                if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) || id >= labels.Length || labels[id] is not null)
                    throw map.Error($"key \"{key}\" of id2label: expected the label ids 0..{labels.Length - 1}, each once");
                labels[id] = value.String();
            }
        }
        else
        {
            int n = json["num_labels"].Int(2, 1, 1 << 16);
            labels = Enumerable.Range(0, n).Select(i => $"LABEL_{i}").ToArray();
        }
        string? problem = json["problem_type"].StringOrNull();
        if (problem is not (null or "regression" or "single_label_classification" or "multi_label_classification"))
            throw json["problem_type"].Error($"\"{problem}\" is not known (expected regression, single_label_classification or multi_label_classification)");
        return (labels, problem == "multi_label_classification");
    }

    static void Validate(EncoderConfig c, CheckedJson json)
    {
        if (c.HiddenSize % c.NumHeads != 0 && c.Deberta is null)
            throw json.Error($"hidden size {c.HiddenSize} must be a multiple of the number of attention heads {c.NumHeads}");
        if (c.PadTokenId >= c.VocabSize) throw json["pad_token_id"].Error($"{c.PadTokenId} is outside the vocabulary ({c.VocabSize} tokens)");
        if (c.MaxTokens < 2) throw json["max_position_embeddings"].Error($"{c.MaxPositionEmbeddings} leaves no room for a sequence");
        if (c.Deberta is { RelativeAttention: true } d && d.AttentionSpan < 1)
            throw json["max_relative_positions"].Error("the relative attention span must be positive");
    }
}
