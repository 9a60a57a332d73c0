using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Models.Families;

namespace Pargs.Models;

/// <summary>
/// The shape of a transformer, in Hugging Face's vocabulary (config.json). WHY one record with a family
/// pointer rather than a record per family: the decoding, training and caching code reads these fields for
/// every family, and tests and tools build configs with <c>with</c>. What every family shares lives here;
/// rotary settings and q/k/v biases are here too because several families share them (Llama, Mistral, Qwen2
/// and the families to come) and the rotary tables are shared code; a setting only one family has goes into
/// that family's own typed record in <see cref="Extras"/> (the family reads and writes it). Which family a
/// config belongs to is its <see cref="ModelType"/>, looked up in <see cref="ModelFamilies"/>.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>HF <c>model_type</c>: llama, qwen2, mistral, gpt2, or any registered family's.</summary>
    public string ModelType { get; init; } = "llama";
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumLayers { get; init; }
    public int NumHeads { get; init; }
    public int NumKvHeads { get; init; }
    public int MaxPositions { get; init; } = 2048;
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>rope_scaling / rope_parameters beyond theta (null = the default rotary).</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>Each token attends to itself and the previous SlidingWindow − 1 tokens only (Mistral's sliding_window); null = all.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>RMSNorm epsilon (Llama) or LayerNorm epsilon (GPT-2).</summary>
    public double NormEps { get; init; } = 1e-5;
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Biases on q/k/v projections (Qwen2; Llama's and Qwen3's attention_bias).</summary>
    public bool AttentionBias { get; init; }
    /// <summary>A bias on the attention output projection o_proj (Llama's and Qwen3's attention_bias; Qwen2 has none).</summary>
    public bool AttentionOutputBias { get; init; }
    /// <summary>RMSNorm over each head of q and k before the rotary (Qwen3's q_norm / k_norm).</summary>
    public bool QkNorm { get; init; }
    public int? BosTokenId { get; init; }
    /// <summary>The first (or only) EOS id; <see cref="EosTokenIds"/> lists every one config.json gives.</summary>
    public int? EosTokenId { get; init; }
    /// <summary>EOS ids after the first, when config.json lists several (Llama-3: end_of_text and eot).</summary>
    public ValueList<int> MoreEosTokenIds { get; init; } = ValueList<int>.Empty;
    public int? PadTokenId { get; init; }
    /// <summary>Settings only this config's family has (a record the family defines), or null.</summary>
    public object? Extras { get; init; }

    /// <summary>Every id that ends a sequence: <see cref="EosTokenId"/> then <see cref="MoreEosTokenIds"/> (a decoder stops on any).</summary>
    public IReadOnlyList<int> EosTokenIds => EosTokenId is { } first ? [first, .. MoreEosTokenIds] : [];

    int? headDim;
    /// <summary>Width of one attention head: config.json's head_dim when given (it may differ from hidden/heads), else hidden/heads.</summary>
    public int HeadDim
    {
        get => headDim ?? (NumHeads > 0 ? HiddenSize / NumHeads : 0);
        init => headDim = value;
    }
    /// <summary>True when <see cref="HeadDim"/> was set explicitly (config.json's head_dim).</summary>
    public bool HasExplicitHeadDim => headDim is not null;
    public int KvDim => NumKvHeads * HeadDim;

    /// <summary>The registered family of <see cref="ModelType"/> (a <see cref="PargsException"/> when none is).</summary>
    public IModelFamily Family => ModelFamilies.ForModelType(ModelType);

    /// <summary>Throws a <see cref="PargsException"/> naming the first field that cannot describe a model.</summary>
    public ModelConfig Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new PargsException($"{source}: {what}");
        }
        Require(VocabSize > 0, $"vocab_size must be positive, got {VocabSize}");
        Require(HiddenSize > 0, $"hidden_size must be positive, got {HiddenSize}");
        Require(NumLayers > 0, $"num_hidden_layers must be positive, got {NumLayers}");
        Require(NumHeads > 0, $"num_attention_heads must be positive, got {NumHeads}");
        Require(HasExplicitHeadDim || HiddenSize % NumHeads == 0, $"hidden_size {HiddenSize} must be a multiple of num_attention_heads {NumHeads}");
        Require(HeadDim > 0, $"head_dim must be positive, got {HeadDim}");
        // Products of the shape fields size the weight matrices: keep them within what an int-indexed tensor can hold.
        Require((long)NumHeads * HeadDim <= 1 << 24 && (long)HiddenSize <= 1 << 24 && (long)IntermediateSize <= 1 << 24 && VocabSize <= 1 << 24,
            $"the shape (hidden_size {HiddenSize}, intermediate_size {IntermediateSize}, heads × head_dim {(long)NumHeads * HeadDim}, vocab_size {VocabSize}) is implausibly large");
        Require(SlidingWindow is null or > 0, $"sliding_window must be positive, got {SlidingWindow}");
        Require(NumKvHeads > 0 && NumHeads % NumKvHeads == 0, $"num_attention_heads {NumHeads} must be a multiple of num_key_value_heads {NumKvHeads}");
        Require(IntermediateSize > 0, $"intermediate_size must be positive, got {IntermediateSize}");
        Require(MaxPositions > 0, $"max_position_embeddings must be positive, got {MaxPositions}");
        ModelFamilies.ForModelType(ModelType, source).Validate(this, source);
        return this;
    }

    /// <summary>Reads a Hugging Face config.json with the defaults of its model_type's family.</summary>
    public static ModelConfig FromHuggingFaceJson(string path)
    {
        // The checked reader: size, depth, strict UTF-8, lone surrogates, duplicate keys; a top-level non-object names the file.
        return FromHuggingFaceJson(Pargs.Json.CheckedJson.ReadFile(path).AsObject(), path);
    }

    public static ModelConfig FromHuggingFaceJson(JsonObject json, string source)
    {
        string modelType = new ConfigJson(json, source).String("model_type")
            ?? throw new PargsException($"{source}: missing field \"model_type\" (expected {string.Join(", ", ModelFamilies.ModelTypes)})");
        return ModelFamilies.ForModelType(modelType, source).ReadConfig(json, source).Validate(source);
    }

    /// <summary>
    /// A Hugging Face config.json for this shape. <paramref name="architecture"/> is e.g.
    /// <c>LlamaForCausalLM</c> or <c>LlamaForSequenceClassification</c>; <paramref name="extra"/> adds fields
    /// such as <c>num_labels</c>.
    /// </summary>
    public JsonObject ToHuggingFaceJson(string architecture, IDictionary<string, JsonNode?>? extra = null)
    {
        var json = new JsonObject { ["architectures"] = new JsonArray(architecture), ["model_type"] = ModelType };
        Family.WriteConfig(this, json);
        json["tie_word_embeddings"] = TieWordEmbeddings;
        json["torch_dtype"] = "float32";
        if (BosTokenId is { } bos) json["bos_token_id"] = bos;
        if (EosTokenIds.Count > 1) json["eos_token_id"] = new JsonArray(EosTokenIds.Select(id => (JsonNode?)id).ToArray());
        else if (EosTokenId is { } eos) json["eos_token_id"] = eos;
        if (PadTokenId is { } pad) json["pad_token_id"] = pad;
        if (extra != null)
            foreach (var (key, value) in extra) json[key] = value?.DeepClone();
        return json;
    }
}
