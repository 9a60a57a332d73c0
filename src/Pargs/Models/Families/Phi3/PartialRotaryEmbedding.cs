using Pargs.Models.Families.Llama;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Phi3;

/// <summary>
/// Rotary positions on the first <see cref="Dims"/> of each head only, the rest passed through unchanged, as
/// transformers' Phi-3 (<c>partial_rotary_factor</c>) and GPT-NeoX (<c>rotary_pct</c>) apply them: the frequencies are
/// computed for a head of <see cref="Dims"/> dimensions (with the config's <see cref="RopeScaling"/>, LongRoPE's
/// short/long switch included) and paired "rotate half" within that slice. With Dims = head_dim this is
/// <see cref="RotaryEmbedding"/> itself.
/// </summary>
public sealed class PartialRotaryEmbedding : IDisposable
{
    readonly RotaryEmbedding rotary;

    /// <summary>The rotated dimensions at the start of each head (even, ≤ head_dim).</summary>
    public int Dims { get; }

    public PartialRotaryEmbedding(int dims, int maxPositions, double theta, RopeScaling? scaling)
    {
        Dims = dims;
        rotary = new RotaryEmbedding(dims, maxPositions, theta, scaling);
    }

    /// <summary>The rotated width for a head of <paramref name="headDim"/> and a factor (transformers: int(head_dim · factor)).</summary>
    public static int DimsFor(int headDim, double factor) => (int)(headDim * factor);

    /// <summary>cos and signed sin [B, 1, T, Dims] for <paramref name="positions"/> [B, T].</summary>
    public (Tensor Cos, Tensor SignedSin) At(Tensor positions) => rotary.At(positions);

    /// <summary>x [B, heads, T, D] with its first <see cref="Dims"/> dimensions rotated.</summary>
    public Tensor Apply(Tensor x, Tensor cos, Tensor signedSin)
    {
        long d = x.shape[3];
        if (Dims == d) return RotaryEmbedding.Apply(x, cos, signedSin);
        var rotated = RotaryEmbedding.Apply(x.narrow(3, 0, Dims).contiguous(), cos, signedSin);
        return cat(new[] { rotated, x.narrow(3, Dims, d - Dims) }, 3);
    }

    /// <summary>The tables of the rotated slice (width <see cref="Dims"/>), for the decode kernel.</summary>
    internal RotaryEmbedding Tables => rotary;

    public void Dispose() => rotary.Dispose();
}
