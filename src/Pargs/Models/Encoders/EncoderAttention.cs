using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Encoders;

/// <summary>Bidirectional multi-head attention as BERT, RoBERTa and DistilBERT compute it.</summary>
public static class EncoderAttention
{
    /// <summary>
    /// softmax(q·kᵀ/√d + mask)·v over all heads: x [B, T, hidden], <paramref name="keyMask"/> [B, 1, 1, T] true at real
    /// tokens → [B, T, heads·d]. Padding keys get −∞, so a real token's output does not depend on the padding.
    /// </summary>
    public static Tensor Forward(Tensor x, Linear query, Linear key, Linear value, int heads, int headDim, Tensor keyMask)
    {
        long b = x.shape[0], t = x.shape[1];
        Tensor Split(Tensor y) => y.view(b, t, heads, headDim).transpose(1, 2); // [B, H, T, d]
        var q = Split(query.forward(x));
        var k = Split(key.forward(x));
        var v = Split(value.forward(x));
        // Explicit Scalars held across their calls: TorchSharp frees an implicit Scalar in its finalizer and keeps no reference to it across the native call, so a collection during the call can free what libtorch reads ("Unknown scalar type").
        using Scalar rootD = Math.Sqrt(headDim).ToScalar(), masked = float.NegativeInfinity.ToScalar();
        var scores = matmul(q, k.transpose(-1, -2)) / rootD;
        scores = scores.masked_fill(keyMask.logical_not(), masked);
        var context = matmul(softmax(scores, -1), v); // [B, H, T, d]
        return context.transpose(1, 2).reshape(b, t, heads * headDim);
    }

    /// <summary>[B, T] true at real tokens → [B, 1, 1, T] for broadcasting over heads and queries.</summary>
    public static Tensor KeyMask(Tensor valid) => valid.to(ScalarType.Bool).unsqueeze(1).unsqueeze(1);
}
