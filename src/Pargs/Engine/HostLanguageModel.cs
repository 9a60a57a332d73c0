using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Models.Families.Llama;
using Pargs.Tokenizers;
using Pargs.Weights;

namespace Pargs.Engine;

/// <summary>
/// A causal LM loaded for decoding only, in its stored precision, with no torch object at all: the config, the weights as
/// views into the mapped file (<see cref="StoredCheckpoint"/>), the rotary tables as host arrays, the head as stored (the
/// embedding when tied), the tokenizer and generation defaults. What <see cref="HostSession"/> decodes on. WHY not a
/// <see cref="CausalLM"/>: that is a torch module (its construction loads libtorch, ~75 MiB resident), while decoding a
/// Llama-family model in stored precision computes everything in <see cref="LlamaDecodeKernel"/> already. Training,
/// reward models and methods that read the whole distribution as a tensor keep the torch model (<see cref="CausalLM.LoadForInference"/>).
/// </summary>
public sealed class HostLanguageModel : IDisposable
{
    readonly RotaryEmbedding rotary;
    readonly string prefix;

    HostLanguageModel(ModelConfig config, StoredTensors weights, string source)
    {
        Config = config;
        Weights = weights;
        Source = source;
        prefix = config.Family.HuggingFacePrefix + ".";
        Head = weights.Matrix(config.TieWordEmbeddings ? prefix + LlamaTensors.Embedding : "lm_head.weight");
        // Tabulated for the positions decoding reaches, growing (doubling) on demand: 128 rows to start, not the stored
        // backbone's 1024 — at head_dim 64 the two tables of 1024 rows are 0.5 MiB, resident, for a prompt of a dozen tokens.
        rotary = RotaryEmbedding.Host(config.HeadDim, config.MaxPositions, config.RopeTheta, config.RopeScaling, initialRows: 128);
    }

    public ModelConfig Config { get; }
    /// <summary>The weights in their stored precision (views into the mapped file; disposed with the model).</summary>
    public StoredTensors Weights { get; }
    /// <summary>lm_head as stored, or the tied embedding.</summary>
    public WeightMatrix Head { get; }
    public ITokenizer? Tokenizer { get; set; }
    public GenerationDefaults? Generation { get; set; }
    public string Source { get; }
    /// <summary>How sessions store keys and values (<c>--kv-cache</c>).</summary>
    public KvCacheType KvCacheType { get; set; } = KvCacheType.F32;

    /// <summary>What decoding needs to know about the model (as <see cref="CausalLM.Info"/>).</summary>
    public LanguageModelInfo Info => new(Source, Tokenizer, Config.VocabSize, Config.MaxPositions, Config.EosTokenId)
    {
        MoreStopIds = Config.EosTokenIds.Concat(Generation?.EosTokenIds ?? []).Distinct().ToArray(),
    };

    /// <summary>
    /// Whether the host engine decodes a model of <paramref name="config"/>: a family whose forward the stored-precision
    /// kernel computes whole (llama, mistral, qwen2, qwen3), without a sliding window (its restricted mask is built by
    /// torch) or LongRoPE's switched tables.
    /// </summary>
    public static bool Serves(ModelConfig config)
        => StoredCheckpoint.HasStoredKernel(config) && config.SlidingWindow is null && RotaryEmbedding.HostTabulates(config.RopeScaling);

    /// <summary>
    /// The model at <paramref name="path"/>, mapped, when the host engine serves it (a GGUF or safetensors checkpoint
    /// <see cref="Serves"/> accepts); null otherwise (the caller loads the torch model). Errors in the file are errors.
    /// </summary>
    public static HostLanguageModel? TryLoad(string path, string? tokenizerPath = null)
    {
        if (StoredCheckpoint.Open(path) is not { } opened) return null;
        var (contents, weights) = opened;
        try
        {
            if (!Serves(contents.Config))
            {
                weights.Dispose();
                return null;
            }
            var model = new HostLanguageModel(contents.Config, weights, contents.Source)
            {
                Generation = contents.Generation,
                Tokenizer = TokenizerLoader.ForCheckpoint(contents, tokenizerPath),
            };
            // As CausalLM.LoadForInference: loading's garbage goes back to the system before the weights page in.
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            return model;
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    int forwards;

    /// <summary>
    /// Before the model's first forward pages its weights in: the code pages loading and the decoding loop's compilation
    /// touched go back to the page cache (<see cref="StartupPages.Release"/>, as after loading). WHY again here: between
    /// loading and the first forward, tokenizing the prompts and compiling the loop paged ~10 MiB of assemblies and the
    /// JIT back in, and the first forward is where resident memory peaks (the whole file becomes resident).
    /// </summary>
    internal void BeforeFirstForward()
    {
        if (Interlocked.Exchange(ref forwards, 1) == 0) StartupPages.Release();
    }

    /// <summary>A kernel over these weights (a session owns one: its activation buffers are per kernel).</summary>
    internal LlamaDecodeKernel CreateKernel() => new(Config, Weights, prefix, rotary);

    public void Dispose()
    {
        rotary.Dispose();
        Weights.Dispose();
    }
}
