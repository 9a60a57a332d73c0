using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// The decoding layout of a model's weights: every <c>nn.Linear</c> weight (and the token embedding when it
/// doubles as a tied lm_head) stored column-major — same shape [out, in], names and values as PyTorch's,
/// transposed strides (<c>w.t().contiguous().t()</c>). WHY: decoding multiplies one row per sequence by every
/// weight, y = x·Wᵀ, and libtorch's GEMM streams a column-major W (a contiguous Wᵀ) markedly faster than a
/// row-major one for such skinny inputs (docs/benchmarks.md, "bench generate"). An embedding lookup then
/// gathers each row with a stride of vocab elements: a few thousand scattered reads per token.
/// <para>
/// Opt-in, for models that only decode: TorchSharp's optimizers create their state with <c>zeros_like</c>
/// (which copies the layout) and cannot save non-contiguous state, so a model that will be trained must stay
/// row-major (the construction default). The change is in place (<c>set_</c>): the same Parameter objects,
/// so references held elsewhere stay valid; <c>copy_</c> (checkpoint loading, LoRA sync) writes through the
/// strides; <see cref="StateDict.Snapshot"/> returns contiguous copies for saving.
/// </para>
/// </summary>
public static class ColumnMajor
{
    /// <summary>Stores <paramref name="model"/>'s matrix weights column-major (false: back to row-major).</summary>
    public static void Apply(nn.Module model, bool columnMajor = true)
    {
        using var _ = no_grad();
        foreach (var weight in Weights(model))
        {
            if (Is(weight) == columnMajor) continue;
            using var scope = NewDisposeScope(); // frees the temporaries, which would keep the old storage alive until the GC runs
            weight.set_(columnMajor ? weight.t().contiguous().t() : weight.contiguous());
        }
    }

    /// <summary>
    /// The layout a model that will only decode should have, as its family declares
    /// (<see cref="Families.IModelFamily.DecodesColumnMajor"/>): Llama-family backbones decode on their CPU kernel,
    /// which reads PyTorch's row-major weights in place (and streams them faster than either torch layout); the
    /// other families decode through torch ops, which stream column-major weights faster.
    /// </summary>
    public static void ApplyForDecoding(nn.Module model, ModelConfig config) => Apply(model, columnMajor: config.Family.DecodesColumnMajor);

    /// <summary>True when <paramref name="t"/> is a matrix stored column-major (and not also row-major).</summary>
    public static bool Is(Tensor t) => t.dim() == 2 && t.stride(0) == 1 && t.stride(1) == t.shape[0] && t.shape[0] > 1;

    /// <summary>The weights multiplied as x·Wᵀ: every Linear's, and a tied lm_head's embedding table.</summary>
    static IEnumerable<Parameter> Weights(nn.Module model)
    {
        var seen = new HashSet<IntPtr>();
        foreach (var (_, module) in model.named_modules().Prepend(("", model)))
        {
            Parameter? weight = module switch
            {
                Linear linear => linear.weight,
                TransformerBackbone { Config.TieWordEmbeddings: true } backbone => backbone.TokenEmbeddingWeight,
                _ => null,
            };
            if (weight is not null && weight.dim() == 2 && seen.Add(weight.Handle)) yield return weight;
        }
    }
}
