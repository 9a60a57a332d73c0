using Pargs.Models.Cpu;
using Pargs.Weights;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// A Llama-family backbone for inference only, whose weights stay in the checkpoint's stored precision
/// (<see cref="StoredTensors"/>: views into the mapped file) and are never materialized as torch parameters.
/// WHY: a float32 module would hold 4 bytes per weight where a bf16 file has 2 and a Q4 file about 0.6, and
/// building it held the model twice while loading. Every forward — decoding steps, sibling candidates,
/// prefills and cache-free forwards (perplexity, the --naive engine) — runs on <see cref="LlamaDecodeKernel"/>.
/// Training needs the float32 model (<see cref="CausalLM.Load"/>): there are no parameters to train here.
/// </summary>
public sealed class LlamaStoredBackbone : TransformerBackbone
{
    readonly StoredTensors weights;
    readonly string prefix;
    readonly RotaryEmbedding rotary;
    readonly Lazy<LlamaDecodeKernel> cacheFree; // for forwards that come here rather than through a session's kernel

    public LlamaStoredBackbone(ModelConfig config, StoredTensors weights) : base(nameof(LlamaStoredBackbone), config)
    {
        this.weights = weights;
        prefix = config.Family.HuggingFacePrefix + ".";
        // Tabulated for the positions decoding reaches, growing on demand (a 131,072-position context is 64 MiB of tables).
        // Host tables (no torch tensor) where they can be: the kernel is their only reader.
        rotary = RotaryEmbedding.HostTabulates(config.RopeScaling)
            ? RotaryEmbedding.Host(config.HeadDim, config.MaxPositions, config.RopeTheta, config.RopeScaling, initialRows: 1024)
            : new RotaryEmbedding(config.HeadDim, config.MaxPositions, config.RopeTheta, config.RopeScaling, initialRows: 1024);
        cacheFree = new(CreateKernel);
    }

    /// <summary>The weights, for the causal LM's head and for descriptions.</summary>
    public StoredTensors Weights => weights;

    /// <summary>
    /// A kernel over these weights (a session owns one: its activation buffers are per kernel). A backbone marked as held
    /// for inference only (pargs serve's models) keeps its float32 matrices' panels, as the torch-held kernel does.
    /// </summary>
    internal LlamaDecodeKernel CreateKernel() => new(Config, weights, prefix, rotary, KeptPanels.Of(this));

    public override Parameter TokenEmbeddingWeight
        => throw new PargsException($"{weights.Source}: the model was loaded for inference in its stored precision; its embedding is not a torch parameter (load it for training to get one)");

    /// <summary>
    /// The forward on the kernel. With no cache (a whole padded sequence: perplexity, the reference engine) the
    /// keys and values go to a cache of this call's own.
    /// </summary>
    protected override Tensor ForwardInScope(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache)
    {
        if (cache is not null) return cacheFree.Value.TryForward(inputIds, positions, mask, cache)!;
        int b = (int)inputIds.shape[0], t = (int)inputIds.shape[1];
        using var scratch = new KvCache(Config, b, t, KvCacheType);
        scratch.Reserve(t);
        return cacheFree.Value.TryForward(inputIds, positions, mask, scratch)!;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            rotary.Dispose();
            weights.Dispose();
        }
        base.Dispose(disposing);
    }
}
