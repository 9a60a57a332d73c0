using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// A second engine for a backbone's gradient-free forward over a KV cache (a decoding step, sibling candidates,
/// a small prefill): same inputs, outputs and cache writes as <see cref="TransformerBackbone.Forward"/>, which
/// stays the reference. A family that has one returns it from <c>IModelFamily.CreateDecodeKernel</c>; the
/// caller that owns the cache (<see cref="BatchSession"/>) tries it first and runs the backbone when it declines.
/// </summary>
public interface IDecodeKernel
{
    /// <summary>
    /// Hidden states [B, T, hidden] for <paramref name="inputIds"/> [B, T] at <paramref name="positions"/> with
    /// the boolean <paramref name="mask"/> [B, 1, T, cache.Length + T], writing keys/values into
    /// <paramref name="cache"/> as the backbone would; null when this forward is not one the kernel takes.
    /// </summary>
    Tensor? TryForward(Tensor inputIds, Tensor positions, Tensor mask, KvCache cache);

    /// <summary>
    /// Whether a forward of <paramref name="tokens"/> new tokens that this kernel takes, run instead as forwards of
    /// whole rows of at least <paramref name="fewestTokens"/> tokens each (on separate threads and kernel instances),
    /// gives every row the same bits: the same engine and the same product kernels for every part as for the whole.
    /// False unless the kernel knows it (then the caller runs the whole forward).
    /// </summary>
    bool RowSplitKeepsBits(long tokens, long fewestTokens) => false;

    /// <summary>
    /// Hidden states [B, T, hidden] for <paramref name="inputIds"/> [B, T] where row b's keys/values live in a one-row cache
    /// of its own, <paramref name="rows"/>[b], right-aligned to the longest (L slots): <paramref name="mask"/> [B, 1, T, L + T]
    /// over those common slots, each row's padding masked; the new keys/values go to each row's own next slots. What a forward
    /// over the rows stacked into one cache gives, without the stack; null when the kernel does not take it.
    /// </summary>
    Tensor? TryForwardRows(Tensor inputIds, Tensor positions, Tensor mask, IReadOnlyList<KvCache> rows) => null;

    /// <summary>Whether <see cref="TryForwardRows"/> takes a forward of <paramref name="tokens"/> new tokens over float32 rows.</summary>
    bool TakesRows(long tokens) => false;
}
