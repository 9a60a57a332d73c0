using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>
/// The models the benchmarks run: the real stories260K checkpoint, and random Llamas with the shapes of
/// llama2.c's stories15M and stories110M (the sizes the issue's tokens/s targets are stated for).
/// Random weights cost exactly what trained ones do.
/// </summary>
public static class BenchmarkModels
{
    public const string Stories260KPath = "data/models/stories260K/tinyllamas-stories-260k-f32.gguf";

    /// <summary>llama2.c stories15M: dim 288, 6 layers, 6 heads, hidden 768, vocab 32000, seq 256.</summary>
    public static ModelConfig Llama15MShape() => Shape(dim: 288, layers: 6, heads: 6, hidden: 768, seq: 256);

    /// <summary>llama2.c stories110M: dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000, seq 1024.</summary>
    public static ModelConfig Llama110MShape() => Shape(dim: 768, layers: 12, heads: 12, hidden: 2048, seq: 1024);

    /// <summary>
    /// A random Phi-3 (fused qkv_proj / gate_up_proj) of stories15M's shape, or of stories260K's (dim 64, 5 layers,
    /// 8 heads over 4 kv heads, hidden 172, vocab 512) with half of each head rotated: the families' decode kernel
    /// against their torch path.
    /// </summary>
    public static ModelConfig Phi3Shape(bool stories15M) => ModelConfig.FromHuggingFaceJson(new System.Text.Json.Nodes.JsonObject
    {
        ["model_type"] = "phi3", ["vocab_size"] = stories15M ? 32000 : 512, ["hidden_size"] = stories15M ? 288 : 64,
        ["intermediate_size"] = stories15M ? 768 : 172, ["num_hidden_layers"] = stories15M ? 6 : 5,
        ["num_attention_heads"] = stories15M ? 6 : 8, ["num_key_value_heads"] = stories15M ? 6 : 4,
        ["max_position_embeddings"] = stories15M ? 256 : 512, ["partial_rotary_factor"] = stories15M ? 1.0 : 0.5,
        ["tie_word_embeddings"] = true, ["sliding_window"] = null, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
    }, "phi3 benchmark shape");

    /// <summary>
    /// A random GPT-NeoX (Pythia's defaults: parallel residual, a quarter of each head rotated, exact GELU, biases, 4×
    /// MLP, untied head) of stories15M's width, depth and vocabulary, or of stories260K's.
    /// </summary>
    public static ModelConfig GptNeoXShape(bool stories15M) => ModelConfig.FromHuggingFaceJson(new System.Text.Json.Nodes.JsonObject
    {
        ["model_type"] = "gpt_neox", ["vocab_size"] = stories15M ? 32000 : 512, ["hidden_size"] = stories15M ? 288 : 64,
        ["intermediate_size"] = stories15M ? 1152 : 256, ["num_hidden_layers"] = stories15M ? 6 : 5,
        ["num_attention_heads"] = stories15M ? 6 : 8, ["max_position_embeddings"] = stories15M ? 256 : 512,
        ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
    }, "gpt_neox benchmark shape");

    /// <summary>
    /// A random Gemma-2 or Gemma-3 text model of stories15M's shape or stories260K's (head_dim = hidden / heads,
    /// query_pre_attn_scalar = head_dim), with its departures switched on: Gemma-2's soft-caps (50 on the scores, 30 on
    /// the logits) and every other layer sliding; Gemma-3's q/k norms, local rotary base and every third layer global
    /// (sliding_window_pattern 3: its default of 6 would leave stories260K's 5 layers all sliding); a 64-token window
    /// the decode crosses.
    /// </summary>
    public static ModelConfig GemmaShape(bool gemma3, bool stories15M)
    {
        var json = new System.Text.Json.Nodes.JsonObject
        {
            ["model_type"] = gemma3 ? "gemma3_text" : "gemma2", ["vocab_size"] = stories15M ? 32000 : 512,
            ["hidden_size"] = stories15M ? 288 : 64, ["intermediate_size"] = stories15M ? 768 : 172,
            ["num_hidden_layers"] = stories15M ? 6 : 5, ["num_attention_heads"] = stories15M ? 6 : 8,
            ["num_key_value_heads"] = stories15M ? 6 : 4, ["head_dim"] = stories15M ? 48 : 8,
            ["query_pre_attn_scalar"] = stories15M ? 48 : 8, ["max_position_embeddings"] = stories15M ? 256 : 512,
            ["sliding_window"] = 64, ["tie_word_embeddings"] = true, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 0,
        };
        if (gemma3) { json["rope_local_base_freq"] = 10000.0; json["sliding_window_pattern"] = 3; }
        else { json["attn_logit_softcapping"] = 50.0; json["final_logit_softcapping"] = 30.0; }
        // Through text, as a config.json holds it (a JsonObject built in code keeps int nodes where the reader wants doubles).
        return ModelConfig.FromHuggingFaceJson(System.Text.Json.Nodes.JsonNode.Parse(json.ToJsonString())!.AsObject(), $"{json["model_type"]} benchmark shape");
    }

    static ModelConfig Shape(int dim, int layers, int heads, int hidden, int seq) => new ModelConfig
    {
        ModelType = "llama", VocabSize = 32000, HiddenSize = dim, IntermediateSize = hidden,
        NumLayers = layers, NumHeads = heads, NumKvHeads = heads, MaxPositions = seq,
        // llama2.c's stories checkpoints share the classifier with the embedding (shared_classifier), so a step
        // reads the same bytes as there.
        TieWordEmbeddings = true,
        BosTokenId = 1, EosTokenId = 2,
    };

    /// <summary>A causal LM with TorchSharp's default random initialisation and the <see cref="IdTokenizer"/>.</summary>
    public static CausalLM RandomLM(ModelConfig config, long seed)
    {
        manual_seed(seed);
        var model = new CausalLM(config) { Tokenizer = new IdTokenizer(config.VocabSize), Source = "(random weights)" };
        model.eval();
        return model;
    }

    /// <summary>Deterministic random token ids in [3, vocab) (ids 0–2 are special in llama vocabularies).</summary>
    public static int[] RandomPrompt(int length, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => rng.Next(3, vocab)).ToArray();
    }
}
