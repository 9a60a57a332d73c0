using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>
/// The models the benchmarks run: the real stories260K checkpoint, and random Llamas with the shapes of
/// llama2.c's stories15M and stories110M (the sizes the tokens/s targets are stated for).
/// Random weights cost exactly what trained ones do.
/// </summary>
public static class BenchmarkModels
{
    public const string Stories260KPath = "data/models/stories260K/tinyllamas-stories-260k-f32.gguf";

    /// <summary>llama2.c stories15M: dim 288, 6 layers, 6 heads, hidden 768, vocab 32000, seq 256.</summary>
    public static ModelConfig Llama15MShape() => Shape(dim: 288, layers: 6, heads: 6, hidden: 768, seq: 256);

    /// <summary>llama2.c stories110M: dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000, seq 1024.</summary>
    public static ModelConfig Llama110MShape() => Shape(dim: 768, layers: 12, heads: 12, hidden: 2048, seq: 1024);

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
