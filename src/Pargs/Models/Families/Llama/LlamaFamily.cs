using System.Text.Json.Nodes;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// Llama and the models transformers writes as Llama with switches: Mistral, and Qwen2 (q/k/v biases).
/// Decodes on <see cref="LlamaDecodeKernel"/> with PyTorch's row-major weights.
/// </summary>
public sealed class LlamaFamily : IModelFamily
{
    /// <summary>model_type → the class-name stem transformers uses (LlamaForCausalLM, MistralForCausalLM…).</summary>
    static readonly Dictionary<string, string> Stems = new(StringComparer.Ordinal)
    {
        ["llama"] = "Llama", ["mistral"] = "Mistral", ["qwen2"] = "Qwen2",
    };

    public string Name => "llama";
    public IReadOnlyList<string> ModelTypes { get; } = Stems.Keys.ToList();
    public string HuggingFacePrefix => "model";
    public IReadOnlyList<string> Architectures { get; } =
        Stems.Values.SelectMany(s => new[] { s + "ForCausalLM", s + "ForSequenceClassification" }).ToList();

    static string Stem(ModelConfig config) => Stems.GetValueOrDefault(config.ModelType, "Llama");
    public string CausalLMArchitecture(ModelConfig config) => Stem(config) + "ForCausalLM";
    public string SequenceClassificationArchitecture(ModelConfig config) => Stem(config) + "ForSequenceClassification";

    public ModelConfig ReadConfig(JsonObject json, string source)
    {
        var c = new ConfigJson(json, source);
        string modelType = c.String("model_type")!;
        int heads = c.Int("num_attention_heads");
        return new ModelConfig
        {
            ModelType = modelType,
            VocabSize = c.Int("vocab_size"),
            HiddenSize = c.Int("hidden_size"),
            IntermediateSize = c.Int("intermediate_size"),
            NumLayers = c.Int("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = c.Int("num_key_value_heads", heads),
            MaxPositions = c.Int("max_position_embeddings", 2048),
            RopeTheta = c.Double("rope_theta", 10000.0),
            NormEps = c.Double("rms_norm_eps", 1e-6),
            TieWordEmbeddings = c.Bool("tie_word_embeddings", modelType == "qwen2"),
            AttentionBias = c.Bool("attention_bias", modelType == "qwen2"),
            BosTokenId = c.TokenId("bos_token_id"),
            EosTokenId = c.TokenId("eos_token_id"),
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
        json["max_position_embeddings"] = config.MaxPositions;
        json["rope_theta"] = config.RopeTheta;
        json["rms_norm_eps"] = config.NormEps;
        json["hidden_act"] = "silu";
        json["attention_bias"] = config.AttentionBias;
    }

    public void Validate(ModelConfig config, string source)
    {
        if (config.HeadDim % 2 != 0)
            throw new PargsException($"{source}: head dimension {config.HeadDim} must be even for rotary embeddings");
    }

    public TransformerBackbone CreateBackbone(ModelConfig config) => new LlamaModel(config);

    public IReadOnlyList<TensorSpec> BackboneTensors(ModelConfig config) => LlamaTensors.Declare(config);

    public IDecodeKernel? CreateDecodeKernel(TransformerBackbone backbone) => new LlamaDecodeKernel((LlamaModel)backbone);

    public bool DecodesColumnMajor => false;

    public IEnumerable<(string Field, object? Value)> DescribeConfig(ModelConfig config)
    {
        yield return ("rope_theta", config.RopeTheta);
        yield return ("rms_norm_eps", config.NormEps);
        yield return ("attention_bias", config.AttentionBias);
    }
}
