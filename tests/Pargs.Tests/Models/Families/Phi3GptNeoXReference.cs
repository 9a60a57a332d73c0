using TorchSharp;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// Independent, deliberately naive forwards of Phi-3 and GPT-NeoX for one unpadded sequence, written from
/// transformers' definitions over a plain state dict: explicit slicing of the fused projections, an explicit
/// partial "rotate half" rotary (its frequencies given by the caller), explicit repeat of key/value heads, explicit
/// masked softmax. They share nothing with the model code but the parameter names.
/// <para>
/// Every Scalar is explicit and held across its call, and sums go through <see cref="HeldScalars"/> (the alpha Scalar
/// TorchSharp's + makes). WHY: TorchSharp's implicit conversion (<c>x.pow(2)</c>,
/// <c>x * 0.5</c>, <c>masked_fill(m, -inf)</c>) makes a temporary Scalar whose finalizer frees the native value; its
/// wrapper is unreachable once its handle is passed, so a collection during the call (any thread allocating) frees it
/// while libtorch reads it ("Unknown scalar type", c10/core/Scalar.h).
/// </para>
/// </summary>
public static class Phi3GptNeoXReference
{
    /// <summary>cos/sin [T, 1, dims/2] of angle(p, i) = p · inverse[i], times <paramref name="attentionFactor"/>.</summary>
    static (Tensor Cos, Tensor Sin) Angles(int t, double[] inverse, double attentionFactor)
    {
        var angles = zeros(t, inverse.Length, dtype: ScalarType.Float64);
        for (int p = 0; p < t; p++)
            for (int i = 0; i < inverse.Length; i++)
                angles[p, i] = p * inverse[i];
        using var factor = attentionFactor.ToScalar();
        return ((angles.cos() * factor).to(ScalarType.Float32).unsqueeze(1), (angles.sin() * factor).to(ScalarType.Float32).unsqueeze(1));
    }

    /// <summary>x [T, heads, d]: (x_i, x_{i+r/2}) for i &lt; r/2 rotated by the angle, dimensions r.. passed through.</summary>
    static Tensor Rope(Tensor x, Tensor cos, Tensor sin, int r)
    {
        long d = x.shape[2];
        var a = x.narrow(2, 0, r / 2);
        var b = x.narrow(2, r / 2, r / 2);
        var parts = new List<Tensor> { a * cos - b * sin, (b * cos).Plus(a * sin) };
        if (r < d) parts.Add(x.narrow(2, r, d - r));
        return cat(parts.ToArray(), 2);
    }

    /// <summary>softmax(q·kᵀ/√d + mask)·v over [T, heads, d] inputs with key/value heads repeated; [T, heads·d].</summary>
    static Tensor Attention(Tensor q, Tensor k, Tensor v, int heads, int kvHeads, int? window)
    {
        long t = q.shape[0], d = q.shape[2];
        k = k.repeat_interleave(heads / kvHeads, dim: 1);
        v = v.repeat_interleave(heads / kvHeads, dim: 1);
        var allowed = ones(t, t).tril();
        if (window is { } span) allowed = allowed - ones(t, t).tril(-span); // keys at distance ≥ window are dropped
        using Scalar rootD = Math.Sqrt(d).ToScalar(), zero = 0.ToScalar(), masked = double.NegativeInfinity.ToScalar();
        var scores = q.permute(1, 0, 2).matmul(k.permute(1, 2, 0)) / rootD;
        scores = scores.masked_fill(allowed.eq(zero), masked).softmax(-1);
        return scores.matmul(v.permute(1, 0, 2)).permute(1, 0, 2).reshape(t, heads * d);
    }

    /// <param name="inverse">Rotary inverse frequencies [rotaryDims/2] (LongRoPE's factors already applied).</param>
    public static Tensor Phi3(ModelConfig c, Dictionary<string, Tensor> w, long[] ids, int rotaryDims, double[] inverse, double attentionFactor, int? window)
    {
        int t = ids.Length, h = c.NumHeads, kvh = c.NumKvHeads, d = c.HiddenSize / c.NumHeads, ff = c.IntermediateSize;
        using Scalar two = 2.ToScalar(), eps = c.NormEps.ToScalar();
        Tensor Rms(Tensor x, Tensor g) => x / x.pow(two).mean(new long[] { -1 }, keepdim: true).Plus(eps).sqrt() * g;
        var (cos, sin) = Angles(t, inverse, attentionFactor);
        var x = w["model.embed_tokens.weight"].index_select(0, tensor(ids));
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var hn = Rms(x, w[p + "input_layernorm.weight"]);
            var qkv = hn.matmul(w[p + "self_attn.qkv_proj.weight"].t());
            var q = Rope(qkv.narrow(1, 0, h * d).view(t, h, d), cos, sin, rotaryDims);
            var k = Rope(qkv.narrow(1, h * d, kvh * d).view(t, kvh, d), cos, sin, rotaryDims);
            var v = qkv.narrow(1, (h + kvh) * d, kvh * d).view(t, kvh, d);
            x = x.Plus(Attention(q, k, v, h, kvh, window).matmul(w[p + "self_attn.o_proj.weight"].t()));
            hn = Rms(x, w[p + "post_attention_layernorm.weight"]);
            var gateUp = hn.matmul(w[p + "mlp.gate_up_proj.weight"].t());
            var gate = gateUp.narrow(1, 0, ff);
            var up = gateUp.narrow(1, ff, ff);
            x = x.Plus((up * gate * gate.sigmoid()).matmul(w[p + "mlp.down_proj.weight"].t()));
        }
        x = Rms(x, w["model.norm.weight"]);
        return x.matmul((w.TryGetValue("lm_head.weight", out var head) ? head : w["model.embed_tokens.weight"]).t());
    }

    /// <summary>Exact GELU, x·Φ(x).</summary>
    public static Tensor ExactGelu(Tensor x)
    {
        using Scalar half = 0.5.ToScalar(), one = 1.ToScalar(), root2 = Math.Sqrt(2).ToScalar();
        return half * x * (x / root2).erf().Plus(one);
    }

    /// <summary>GELU's tanh approximation (gelu_new).</summary>
    public static Tensor TanhGelu(Tensor x)
    {
        using Scalar half = 0.5.ToScalar(), one = 1.ToScalar(), three = 3.ToScalar(), cubic = 0.044715.ToScalar(), slope = Math.Sqrt(2 / Math.PI).ToScalar();
        return half * x * (slope * x.Plus(cubic * x.pow(three))).tanh().Plus(one);
    }

    /// <param name="gelu">The MLP's activation.</param>
    public static Tensor GptNeoX(ModelConfig c, Dictionary<string, Tensor> w, long[] ids, int rotaryDims, double[] inverse, bool parallelResidual, Func<Tensor, Tensor> gelu)
    {
        int t = ids.Length, h = c.NumHeads, d = c.HiddenSize / c.NumHeads;
        using Scalar two = 2.ToScalar(), eps = c.NormEps.ToScalar();
        Tensor Ln(Tensor x, string name)
        {
            var mu = x.mean(new long[] { -1 }, keepdim: true);
            var var = (x - mu).pow(two).mean(new long[] { -1 }, keepdim: true);
            return ((x - mu) / var.Plus(eps).sqrt() * w[name + ".weight"]).Plus(w[name + ".bias"]);
        }
        Tensor Lin(Tensor x, string name) => x.matmul(w[name + ".weight"].t()).Plus(w.TryGetValue(name + ".bias", out var b) ? b : zeros(1));
        var (cos, sin) = Angles(t, inverse, 1.0);
        var x = w["gpt_neox.embed_in.weight"].index_select(0, tensor(ids));
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"gpt_neox.layers.{l}.";
            // query_key_value's output per head: [q | k | v] of head_size each.
            var qkv = Lin(Ln(x, p + "input_layernorm"), p + "attention.query_key_value").view(t, h, 3 * d);
            var q = Rope(qkv.narrow(2, 0, d), cos, sin, rotaryDims);
            var k = Rope(qkv.narrow(2, d, d), cos, sin, rotaryDims);
            var v = qkv.narrow(2, 2 * d, d);
            var attended = Lin(Attention(q, k, v, h, h, null), p + "attention.dense");
            Tensor Mlp(Tensor z) => Lin(gelu(Lin(Ln(z, p + "post_attention_layernorm"), p + "mlp.dense_h_to_4h")), p + "mlp.dense_4h_to_h");
            if (parallelResidual) x = x.Plus(attended).Plus(Mlp(x));
            else
            {
                var after = x.Plus(attended);
                x = after.Plus(Mlp(after));
            }
        }
        x = Ln(x, "gpt_neox.final_layer_norm");
        return x.matmul((w.TryGetValue("lm_head.weight", out var head) ? head : w["gpt_neox.embed_in.weight"]).t());
    }
}
