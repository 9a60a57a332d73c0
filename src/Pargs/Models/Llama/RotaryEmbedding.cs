using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Llama;

/// <summary>
/// Rotary position embeddings in Hugging Face's "rotate half" convention: dimension i pairs with i + D/2.
/// Checkpoints in Meta's interleaved-pairs layout (GGUF, llama2.c) have their q/k weights permuted at load
/// time, so there is one code path at run time. Tables are precomputed for every position.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    readonly Tensor cos, sin; // [maxPositions, D]

    public RotaryEmbedding(int headDim, int maxPositions, double theta)
    {
        using var scope = NewDisposeScope();
        var invFreq = 1.0 / pow(theta, arange(0, headDim, 2, dtype: ScalarType.Float64) / headDim);
        var freqs = outer(arange(maxPositions, dtype: ScalarType.Float64), invFreq);
        var emb = cat(new[] { freqs, freqs }, 1);
        cos = emb.cos().to(ScalarType.Float32).MoveToOuterDisposeScope();
        sin = emb.sin().to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>cos and sin for <paramref name="positions"/> [B, T], shaped [B, 1, T, D] to broadcast over heads.</summary>
    public (Tensor Cos, Tensor Sin) At(Tensor positions)
    {
        var flat = positions.reshape(-1);
        long b = positions.shape[0], t = positions.shape[1];
        return (cos.index_select(0, flat).view(b, 1, t, -1), sin.index_select(0, flat).view(b, 1, t, -1));
    }

    /// <summary>x·cos + rotate_half(x)·sin for x [B, heads, T, D].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[3] / 2;
        var rotated = cat(new[] { -x.narrow(3, half, half), x.narrow(3, 0, half) }, 3);
        return x * cos + rotated * sin;
    }

    public void Dispose()
    {
        cos.Dispose();
        sin.Dispose();
    }
}
