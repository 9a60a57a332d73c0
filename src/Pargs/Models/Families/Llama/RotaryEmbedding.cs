using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// Rotary position embeddings in Hugging Face's "rotate half" convention: dimension i pairs with i + D/2.
/// Checkpoints in Meta's interleaved-pairs layout (GGUF, llama2.c) have their q/k weights permuted at load
/// time, so there is one code path at run time. Tables are precomputed for every position, with the config's
/// frequency scaling (<see cref="RopeScaling"/>) and its attention factor folded into cos and sin, as
/// transformers does. LongRoPE has a second pair of tables for forwards that reach past the pre-training
/// context; dynamic NTK only differs from the default past max_position_embeddings, which is also the context
/// Pargs allows, so its tables are the default ones.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    // [maxPositions, D]. signedSin = sin with its first half negated, so that rotate_half(x)·sin becomes
    // roll(x, D/2)·signedSin: one op instead of narrow/neg/narrow/cat (rotate_half(x) = [−x₂, x₁], roll = [x₂, x₁]).
    readonly Tensor cos, signedSin;
    readonly Tensor? longCos, longSignedSin;
    readonly int longFrom; // sequence length from which the long tables apply (LongRoPE), else int.MaxValue

    /// <summary>The tables [maxPositions, D] themselves, for <see cref="LlamaDecodeKernel"/>.</summary>
    internal Tensor CosTable => cos;
    internal Tensor SignedSinTable => signedSin;

    public RotaryEmbedding(int headDim, int maxPositions, double theta) : this(headDim, maxPositions, theta, null) { }

    public RotaryEmbedding(int headDim, int maxPositions, double theta, RopeScaling? scaling)
    {
        // LongRoPE: the main tables use the short factors (sequences within the pre-training context), the long
        // tables the long factors; every other type's tables are fixed (dynamic: see the class comment).
        int original = scaling is { Type: "longrope" } ? scaling.OriginalMaxPositions ?? maxPositions : maxPositions;
        (cos, signedSin) = Tables(headDim, maxPositions, theta, scaling, sequenceLength: original);
        longFrom = int.MaxValue;
        if (original < maxPositions)
        {
            (longCos, longSignedSin) = Tables(headDim, maxPositions, theta, scaling, sequenceLength: original + 1);
            longFrom = original + 1;
        }
    }

    static (Tensor Cos, Tensor SignedSin) Tables(int headDim, int maxPositions, double theta, RopeScaling? scaling, long sequenceLength)
    {
        using var scope = NewDisposeScope();
        var (inverse, attentionFactor) = RopeScaling.Frequencies(scaling, headDim, theta, maxPositions, sequenceLength);
        var invFreq = tensor(inverse, dtype: ScalarType.Float64);
        var freqs = outer(arange(maxPositions, dtype: ScalarType.Float64), invFreq);
        var emb = cat(new[] { freqs, freqs }, 1);
        var sign = cat(new[] { -ones(headDim / 2, dtype: ScalarType.Float64), ones(headDim / 2, dtype: ScalarType.Float64) });
        return ((emb.cos() * attentionFactor).to(ScalarType.Float32).MoveToOuterDisposeScope(),
                (emb.sin() * sign * attentionFactor).to(ScalarType.Float32).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The tables for a forward whose longest row reaches <paramref name="sequenceLength"/> positions (max position + 1):
    /// the long LongRoPE tables past the pre-training context, else the main ones.
    /// </summary>
    internal (Tensor Cos, Tensor SignedSin) TablesFor(long sequenceLength)
        => sequenceLength >= longFrom ? (longCos!, longSignedSin!) : (cos, signedSin);

    /// <summary>cos and signed sin for <paramref name="positions"/> [B, T], shaped [B, 1, T, D] to broadcast over heads.</summary>
    public (Tensor Cos, Tensor SignedSin) At(Tensor positions)
    {
        var flat = positions.reshape(-1);
        long b = positions.shape[0], t = positions.shape[1];
        var (c, s) = longFrom == int.MaxValue ? (cos, signedSin) : TablesFor(flat.max().item<long>() + 1);
        return (c.index_select(0, flat).view(b, 1, t, -1), s.index_select(0, flat).view(b, 1, t, -1));
    }

    /// <summary>x·cos + rotate_half(x)·sin for x [B, heads, T, D], given the signed sin of <see cref="At"/>.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor signedSin)
        => x * cos + x.roll(x.shape[3] / 2, 3) * signedSin;

    public void Dispose()
    {
        cos.Dispose();
        signedSin.Dispose();
        longCos?.Dispose();
        longSignedSin?.Dispose();
    }
}
