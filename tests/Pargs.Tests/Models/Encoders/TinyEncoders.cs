using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Json;
using Pargs.Models.Encoders;
using Pargs.Tests.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Encoders;

/// <summary>
/// Tiny random encoder classifiers written in the real format: config.json as transformers writes it,
/// model.safetensors under transformers' names, and a tokenizer.json of the tokenizer goldens (bert, roberta,
/// deberta fixtures, whose ids the Rust library checked).
/// </summary>
internal static class TinyEncoders
{
    /// <summary>A BERT classifier with two labels (NEGATIVE, POSITIVE) and token types.</summary>
    public static JsonObject Bert() => new()
    {
        ["architectures"] = new JsonArray("BertForSequenceClassification"), ["model_type"] = "bert",
        ["hidden_size"] = 16, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["intermediate_size"] = 24,
        ["max_position_embeddings"] = 64, ["type_vocab_size"] = 2, ["hidden_act"] = "gelu", ["layer_norm_eps"] = 1e-12,
        ["id2label"] = new JsonObject { ["0"] = "NEGATIVE", ["1"] = "POSITIVE" }, ["label2id"] = new JsonObject { ["NEGATIVE"] = 0, ["POSITIVE"] = 1 },
        ["hidden_dropout_prob"] = 0.1, ["pad_token_id"] = 0,
    };

    /// <summary>A RoBERTa classifier with three labels, transformers' RoBERTa numbers (pad 1, 2 + 64 positions, 1 type).</summary>
    public static JsonObject Roberta() => new()
    {
        ["architectures"] = new JsonArray("RobertaForSequenceClassification"), ["model_type"] = "roberta",
        ["hidden_size"] = 16, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 2, ["intermediate_size"] = 32,
        ["max_position_embeddings"] = 66, ["type_vocab_size"] = 1, ["hidden_act"] = "gelu", ["layer_norm_eps"] = 1e-5,
        ["pad_token_id"] = 1, ["bos_token_id"] = 0, ["eos_token_id"] = 2,
        ["id2label"] = new JsonObject { ["0"] = "negative", ["1"] = "neutral", ["2"] = "positive" },
    };

    /// <summary>A DistilBERT regression head (one label).</summary>
    public static JsonObject DistilBert() => new()
    {
        ["architectures"] = new JsonArray("DistilBertForSequenceClassification"), ["model_type"] = "distilbert",
        ["dim"] = 16, ["n_layers"] = 2, ["n_heads"] = 4, ["hidden_dim"] = 20, ["max_position_embeddings"] = 64,
        ["activation"] = "gelu", ["sinusoidal_pos_embds"] = false, ["seq_classif_dropout"] = 0.2,
        ["id2label"] = new JsonObject { ["0"] = "LABEL_0" }, ["problem_type"] = "regression",
    };

    /// <summary>
    /// DeBERTa-v3's settings (OpenAssistant's reward-model-deberta-v3 config, scaled down): relative attention with log
    /// buckets (8 buckets over 24 positions, so distances past ±4 share buckets), c2p and p2c with shared keys, the
    /// relative embeddings layer-normed, no absolute positions and no token types; one label.
    /// </summary>
    public static JsonObject DebertaV3() => new()
    {
        ["architectures"] = new JsonArray("DebertaV2ForSequenceClassification"), ["model_type"] = "deberta-v2",
        ["hidden_size"] = 16, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["intermediate_size"] = 24,
        ["max_position_embeddings"] = 64, ["relative_attention"] = true, ["max_relative_positions"] = 24, ["position_buckets"] = 8,
        ["pos_att_type"] = new JsonArray("p2c", "c2p"), ["share_att_key"] = true, ["norm_rel_ebd"] = "layer_norm",
        ["position_biased_input"] = false, ["type_vocab_size"] = 0, ["layer_norm_eps"] = 1e-7, ["hidden_act"] = "gelu",
        ["pooler_hidden_act"] = "gelu", ["pooler_hidden_size"] = 16, ["pooler_dropout"] = 0, ["pad_token_id"] = 0,
        ["id2label"] = new JsonObject { ["0"] = "LABEL_0" },
    };

    /// <summary>
    /// DeBERTa-v2's other corners: separate pos_key_proj / pos_query_proj (share_att_key false), exact distances clamped
    /// at a span of 6, absolute positions added to the input, token types, an embedding width below hidden (embed_proj),
    /// pos_att_type as the "c2p|p2c" string, a tanh pooler and two labels.
    /// </summary>
    public static JsonObject DebertaV2() => new()
    {
        ["architectures"] = new JsonArray("DebertaV2ForSequenceClassification"), ["model_type"] = "deberta-v2",
        ["hidden_size"] = 16, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 2, ["intermediate_size"] = 24,
        ["max_position_embeddings"] = 64, ["relative_attention"] = true, ["max_relative_positions"] = 6,
        ["pos_att_type"] = "c2p|p2c", ["share_att_key"] = false, ["position_biased_input"] = true, ["type_vocab_size"] = 2,
        ["embedding_size"] = 12, ["hidden_act"] = "gelu_new", ["pooler_hidden_act"] = "tanh",
        ["id2label"] = new JsonObject { ["0"] = "bad", ["1"] = "good" },
    };

    /// <summary>The tokenizer fixture a model type is tested with.</summary>
    public static string TokenizerFor(string modelType) => modelType switch
    {
        "bert" or "distilbert" => "bert",
        "roberta" => "roberta",
        _ => "deberta",
    };

    /// <summary>
    /// Writes a folder: the tokenizer fixture, config.json (vocab_size = the tokenizer's), and weights drawn from
    /// <paramref name="seed"/> for every parameter the classifier has (LayerNorm gains around 1, so no layer is an identity).
    /// </summary>
    public static string Write(string dir, JsonObject config, int seed, Action<Dictionary<string, Tensor>>? edit = null)
    {
        Directory.CreateDirectory(dir);
        string fixture = Path.Combine(TokenizerGoldens.Fixtures, TokenizerFor((string)config["model_type"]!));
        File.Copy(Path.Combine(fixture, "tokenizer.json"), Path.Combine(dir, "tokenizer.json"), overwrite: true);
        File.Copy(Path.Combine(fixture, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"), overwrite: true);
        config["vocab_size"] = TokenizerGoldens.Load(TokenizerFor((string)config["model_type"]!)).VocabSize;
        File.WriteAllText(Path.Combine(dir, HuggingFaceFolder.ConfigFile), config.ToJsonString());

        var encoderConfig = EncoderConfigReader.Read(CheckedJson.Wrap(JsonNode.Parse(config.ToJsonString()), "config"));
        using var model = EncoderClassifier.Create(encoderConfig);
        var random = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            var shape = parameter.shape;
            long n = parameter.numel();
            bool norm = name.Contains("LayerNorm") || name.Contains("layer_norm");
            double fanIn = shape.Length == 2 ? shape[1] : 1;
            var values = new float[n];
            for (long i = 0; i < n; i++)
                values[i] = (float)(norm && name.EndsWith(".weight") ? 1 + 0.3 * Normal()
                    : norm ? 0.2 * Normal()
                    : name.Contains("embeddings") ? 0.8 * Normal()
                    : name.EndsWith(".bias") ? 0.2 * Normal()
                    : Normal() / Math.Sqrt(fanIn));
            tensors[name] = tensor(values, shape);
        }
        edit?.Invoke(tensors);
        Safetensors.Save(Path.Combine(dir, HuggingFaceFolder.WeightsFile), tensors);
        foreach (var t in tensors.Values) t.Dispose();
        return dir;
    }

    /// <summary>The reference of a folder written by <see cref="Write"/>: its safetensors read back as plain arrays.</summary>
    public static EncoderReference Reference(string dir)
    {
        var tensors = Safetensors.Load(Path.Combine(dir, HuggingFaceFolder.WeightsFile));
        var arrays = tensors.ToDictionary(kv => kv.Key, kv => (kv.Value.to(ScalarType.Float32).data<float>().ToArray(), kv.Value.shape));
        foreach (var t in tensors.Values) t.Dispose();
        return new EncoderReference(arrays, JsonNode.Parse(File.ReadAllText(Path.Combine(dir, HuggingFaceFolder.ConfigFile)))!.AsObject());
    }
}
