using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Models;

/// <summary>The two transformer families Pargs runs. Qwen2 and Mistral are Llama with small switches.</summary>
public enum ModelFamily { Llama, Gpt2 }

/// <summary>
/// The shape of a transformer, in Hugging Face's vocabulary (config.json). One record for both families;
/// fields a family does not use keep their defaults.
/// </summary>
public sealed record ModelConfig
{
    public ModelFamily Family { get; init; } = ModelFamily.Llama;
    /// <summary>HF <c>model_type</c>: llama, qwen2, mistral, gpt2.</summary>
    public string ModelType { get; init; } = "llama";
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumLayers { get; init; }
    public int NumHeads { get; init; }
    public int NumKvHeads { get; init; }
    public int MaxPositions { get; init; } = 2048;
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>RMSNorm epsilon (Llama) or LayerNorm epsilon (GPT-2).</summary>
    public double NormEps { get; init; } = 1e-5;
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Biases on q/k/v projections (Qwen2).</summary>
    public bool AttentionBias { get; init; }
    public int? BosTokenId { get; init; }
    public int? EosTokenId { get; init; }
    public int? PadTokenId { get; init; }

    public int HeadDim => HiddenSize / NumHeads;
    public int KvDim => NumKvHeads * HeadDim;

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
        Require(NumHeads > 0 && HiddenSize % NumHeads == 0, $"hidden_size {HiddenSize} must be a multiple of num_attention_heads {NumHeads}");
        Require(NumKvHeads > 0 && NumHeads % NumKvHeads == 0, $"num_attention_heads {NumHeads} must be a multiple of num_key_value_heads {NumKvHeads}");
        Require(HeadDim % 2 == 0 || Family == ModelFamily.Gpt2, $"head dimension {HeadDim} must be even for rotary embeddings");
        Require(IntermediateSize > 0, $"intermediate_size must be positive, got {IntermediateSize}");
        Require(MaxPositions > 0, $"max_position_embeddings must be positive, got {MaxPositions}");
        return this;
    }

    /// <summary>Reads a Hugging Face config.json (llama, qwen2, mistral, gpt2).</summary>
    public static ModelConfig FromHuggingFaceJson(string path)
    {
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path))?.AsObject()
                   ?? throw new PargsException($"{path}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new PargsException($"{path}: not valid JSON ({e.Message})");
        }
        return FromHuggingFaceJson(json, path);
    }

    public static ModelConfig FromHuggingFaceJson(JsonObject json, string source)
    {
        string modelType = json["model_type"]?.GetValue<string>()
            ?? throw new PargsException($"{source}: missing field \"model_type\" (expected llama, qwen2, mistral or gpt2)");
        int Int(string name, int? fallback = null)
        {
            var node = json[name];
            if (node is null)
                return fallback ?? throw new PargsException($"{source}: missing field \"{name}\"");
            try { return node.GetValue<int>(); }
            catch (Exception) { throw new PargsException($"{source}: field \"{name}\" must be an integer, got {node.ToJsonString()}"); }
        }
        double Dbl(string name, double fallback)
        {
            var node = json[name];
            if (node is null) return fallback;
            try { return node.GetValue<double>(); }
            catch (Exception) { throw new PargsException($"{source}: field \"{name}\" must be a number, got {node.ToJsonString()}"); }
        }
        bool Bool(string name, bool fallback) => json[name] is { } n ? n.GetValue<bool>() : fallback;
        int? TokenId(string name)
        {
            var node = json[name];
            if (node is null) return null;
            if (node is JsonArray arr) return arr.Count > 0 ? arr[0]!.GetValue<int>() : null; // Llama-3 lists several EOS ids
            return node.GetValue<int>();
        }

        switch (modelType)
        {
            case "llama":
            case "mistral":
            case "qwen2":
            {
                int heads = Int("num_attention_heads");
                return new ModelConfig
                {
                    Family = ModelFamily.Llama,
                    ModelType = modelType,
                    VocabSize = Int("vocab_size"),
                    HiddenSize = Int("hidden_size"),
                    IntermediateSize = Int("intermediate_size"),
                    NumLayers = Int("num_hidden_layers"),
                    NumHeads = heads,
                    NumKvHeads = Int("num_key_value_heads", heads),
                    MaxPositions = Int("max_position_embeddings", 2048),
                    RopeTheta = Dbl("rope_theta", 10000.0),
                    NormEps = Dbl("rms_norm_eps", 1e-6),
                    TieWordEmbeddings = Bool("tie_word_embeddings", modelType == "qwen2"),
                    AttentionBias = Bool("attention_bias", modelType == "qwen2"),
                    BosTokenId = TokenId("bos_token_id"),
                    EosTokenId = TokenId("eos_token_id"),
                    PadTokenId = TokenId("pad_token_id"),
                }.Validate(source);
            }
            case "gpt2":
            {
                int hidden = Int("n_embd");
                int heads = Int("n_head");
                int? inner = json["n_inner"] is { } n && n.GetValueKind() == JsonValueKind.Number ? n.GetValue<int>() : null;
                return new ModelConfig
                {
                    Family = ModelFamily.Gpt2,
                    ModelType = modelType,
                    VocabSize = Int("vocab_size"),
                    HiddenSize = hidden,
                    IntermediateSize = inner ?? 4 * hidden,
                    NumLayers = Int("n_layer"),
                    NumHeads = heads,
                    NumKvHeads = heads,
                    MaxPositions = Int("n_positions", 1024),
                    NormEps = Dbl("layer_norm_epsilon", 1e-5),
                    TieWordEmbeddings = Bool("tie_word_embeddings", true),
                    BosTokenId = TokenId("bos_token_id"),
                    EosTokenId = TokenId("eos_token_id"),
                    PadTokenId = TokenId("pad_token_id"),
                }.Validate(source);
            }
            default:
                throw new PargsException($"{source}: unknown model_type \"{modelType}\" (Pargs runs llama, qwen2, mistral and gpt2)");
        }
    }

    /// <summary>
    /// A Hugging Face config.json for this shape. <paramref name="architecture"/> is e.g.
    /// <c>LlamaForCausalLM</c> or <c>LlamaForSequenceClassification</c>; <paramref name="extra"/> adds fields
    /// such as <c>num_labels</c>.
    /// </summary>
    public JsonObject ToHuggingFaceJson(string architecture, IDictionary<string, JsonNode?>? extra = null)
    {
        var json = new JsonObject { ["architectures"] = new JsonArray(architecture), ["model_type"] = ModelType };
        if (Family == ModelFamily.Gpt2)
        {
            json["vocab_size"] = VocabSize;
            json["n_embd"] = HiddenSize;
            json["n_inner"] = IntermediateSize;
            json["n_layer"] = NumLayers;
            json["n_head"] = NumHeads;
            json["n_positions"] = MaxPositions;
            json["n_ctx"] = MaxPositions;
            json["layer_norm_epsilon"] = NormEps;
            json["activation_function"] = "gelu_new";
        }
        else
        {
            json["vocab_size"] = VocabSize;
            json["hidden_size"] = HiddenSize;
            json["intermediate_size"] = IntermediateSize;
            json["num_hidden_layers"] = NumLayers;
            json["num_attention_heads"] = NumHeads;
            json["num_key_value_heads"] = NumKvHeads;
            json["max_position_embeddings"] = MaxPositions;
            json["rope_theta"] = RopeTheta;
            json["rms_norm_eps"] = NormEps;
            json["hidden_act"] = "silu";
            json["attention_bias"] = AttentionBias;
        }
        json["tie_word_embeddings"] = TieWordEmbeddings;
        json["torch_dtype"] = "float32";
        if (BosTokenId is { } bos) json["bos_token_id"] = bos;
        if (EosTokenId is { } eos) json["eos_token_id"] = eos;
        if (PadTokenId is { } pad) json["pad_token_id"] = pad;
        if (extra != null)
            foreach (var (key, value) in extra) json[key] = value?.DeepClone();
        return json;
    }
}
