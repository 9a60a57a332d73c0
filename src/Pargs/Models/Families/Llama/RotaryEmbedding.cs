using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// Rotary position embeddings in Hugging Face's "rotate half" convention: dimension i pairs with i + D/2.
/// Checkpoints in Meta's interleaved-pairs layout (GGUF, llama2.c) have their q/k weights permuted at load
/// time, so there is one code path at run time. Tables are precomputed for every position.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    // [maxPositions, D]. signedSin = sin with its first half negated, so that rotate_half(x)·sin becomes
    // roll(x, D/2)·signedSin: one op instead of narrow/neg/narrow/cat (rotate_half(x) = [−x₂, x₁], roll = [x₂, x₁]).
    readonly Tensor cos, signedSin;

    /// <summary>The tables [maxPositions, D] themselves, for <see cref="LlamaDecodeKernel"/>.</summary>
    internal Tensor CosTable => cos;
    internal Tensor SignedSinTable => signedSin;

    public RotaryEmbedding(int headDim, int maxPositions, double theta)
    {
        using var scope = NewDisposeScope();
        var invFreq = 1.0 / pow(theta, arange(0, headDim, 2, dtype: ScalarType.Float64) / headDim);
        var freqs = outer(arange(maxPositions, dtype: ScalarType.Float64), invFreq);
        var emb = cat(new[] { freqs, freqs }, 1);
        var sign = cat(new[] { -ones(headDim / 2, dtype: ScalarType.Float64), ones(headDim / 2, dtype: ScalarType.Float64) });
        cos = emb.cos().to(ScalarType.Float32).MoveToOuterDisposeScope();
        signedSin = (emb.sin() * sign).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>cos and signed sin for <paramref name="positions"/> [B, T], shaped [B, 1, T, D] to broadcast over heads.</summary>
    public (Tensor Cos, Tensor SignedSin) At(Tensor positions)
    {
        var flat = positions.reshape(-1);
        long b = positions.shape[0], t = positions.shape[1];
        return (cos.index_select(0, flat).view(b, 1, t, -1), signedSin.index_select(0, flat).view(b, 1, t, -1));
    }

    /// <summary>x·cos + rotate_half(x)·sin for x [B, heads, T, D], given the signed sin of <see cref="At"/>.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor signedSin)
        => x * cos + x.roll(x.shape[3] / 2, 3) * signedSin;

    public void Dispose()
    {
        cos.Dispose();
        signedSin.Dispose();
    }
}
