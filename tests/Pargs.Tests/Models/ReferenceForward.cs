using TorchSharp;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// Independent, deliberately naive forwards written from the papers' equations over a plain state dict
/// (explicit repeat_kv, explicit softmax, explicit rotary formula) for one unpadded sequence. The model
/// code must agree with these; they share nothing with it but the parameter names.
/// </summary>
public static class ReferenceForward
{
    /// <param name="inverseFrequencies">Rotary frequencies [d/2] (default: 1/theta^(2i/d)); <paramref name="attentionFactor"/> scales cos and sin.</param>
    /// <param name="window">Sliding window: position i sees j only when i − j &lt; window.</param>
    public static Tensor Llama(ModelConfig c, Dictionary<string, Tensor> w, long[] ids,
        double[]? inverseFrequencies = null, double attentionFactor = 1.0, int? window = null)
    {
        int t = ids.Length, h = c.NumHeads, kvh = c.NumKvHeads, d = c.HeadDim;
        Tensor Rms(Tensor x, Tensor g) => x / x.Pow(2).mean(new long[] { -1 }, keepdim: true).Plus(c.NormEps).sqrt() * g;
        Tensor Lin(Tensor x, string name) => x.matmul(w[name + ".weight"].t()).Plus(w.TryGetValue(name + ".bias", out var b) ? b : zeros(1));
        // Rotary, "rotate half": angle(pos, i) = pos / theta^(2i/d) for i < d/2, applied to (x_i, x_{i+d/2}).
        var angles = zeros(t, d / 2, dtype: ScalarType.Float64);
        for (int p = 0; p < t; p++)
            for (int i = 0; i < d / 2; i++)
                angles[p, i] = p * (inverseFrequencies?[i] ?? 1.0 / Math.Pow(c.RopeTheta, 2.0 * i / d));
        var cos = angles.cos().Times(attentionFactor).to(ScalarType.Float32).unsqueeze(1); // [T, 1, d/2]
        var sin = angles.sin().Times(attentionFactor).to(ScalarType.Float32).unsqueeze(1);
        Tensor Rope(Tensor x) // [T, heads, d]
        {
            var a = x.narrow(2, 0, d / 2);
            var b = x.narrow(2, d / 2, d / 2);
            return cat(new[] { a * cos - b * sin, (b * cos).Plus(a * sin) }, 2);
        }
        var x = w["model.embed_tokens.weight"].index_select(0, tensor(ids));
        var causal = ones(t, t).tril();
        if (window is { } span) causal = causal - ones(t, t).tril(-span); // drop keys at distance ≥ window
        using Scalar zero = 0.ToScalar(), minusInfinity = double.NegativeInfinity.ToScalar(); // held: see Pargs.Models.HeldScalars
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var hn = Rms(x, w[p + "input_layernorm.weight"]);
            var q = Lin(hn, p + "self_attn.q_proj").view(t, h, d);
            var k = Lin(hn, p + "self_attn.k_proj").view(t, kvh, d);
            if (w.TryGetValue(p + "self_attn.q_norm.weight", out var qNorm)) // Qwen3: RMSNorm over each head first
            {
                q = Rms(q, qNorm);
                k = Rms(k, w[p + "self_attn.k_norm.weight"]);
            }
            q = Rope(q);
            k = Rope(k);
            var v = Lin(hn, p + "self_attn.v_proj").view(t, kvh, d);
            k = k.repeat_interleave(h / kvh, dim: 1);
            v = v.repeat_interleave(h / kvh, dim: 1);
            var scores = q.permute(1, 0, 2).matmul(k.permute(1, 2, 0)).DividedBy(Math.Sqrt(d)); // [h, T, T]
            scores = scores.masked_fill(causal.eq(zero), minusInfinity).softmax(-1);
            var o = scores.matmul(v.permute(1, 0, 2)).permute(1, 0, 2).reshape(t, h * d);
            x = x.Plus(Lin(o, p + "self_attn.o_proj"));
            hn = Rms(x, w[p + "post_attention_layernorm.weight"]);
            var gate = Lin(hn, p + "mlp.gate_proj");
            x = x.Plus(Lin(gate * gate.sigmoid() * Lin(hn, p + "mlp.up_proj"), p + "mlp.down_proj"));
        }
        x = Rms(x, w["model.norm.weight"]);
        var head = w.TryGetValue("lm_head.weight", out var lm) ? lm : w["model.embed_tokens.weight"];
        return x.matmul(head.t());
    }

    /// <summary><paramref name="gelu"/> replaces the tanh GELU (to emulate another implementation's rounding of it).</summary>
    public static Tensor Gpt2(ModelConfig c, Dictionary<string, Tensor> w, long[] ids, Func<Tensor, Tensor>? gelu = null)
    {
        int t = ids.Length, h = c.NumHeads, d = c.HeadDim, e = c.HiddenSize;
        Tensor Ln(Tensor x, string name)
        {
            var mu = x.mean(new long[] { -1 }, keepdim: true);
            var var = (x - mu).Pow(2).mean(new long[] { -1 }, keepdim: true);
            return ((x - mu) / var.Plus(c.NormEps).sqrt() * w[name + ".weight"]).Plus(w[name + ".bias"]);
        }
        Tensor Conv(Tensor x, string name) => x.matmul(w[name + ".weight"]).Plus(w[name + ".bias"]);
        var x = w["transformer.wte.weight"].index_select(0, tensor(ids)).Plus(w["transformer.wpe.weight"].narrow(0, 0, t));
        var causal = ones(t, t).tril();
        using Scalar zero = 0.ToScalar(), minusInfinity = double.NegativeInfinity.ToScalar(); // held: see Pargs.Models.HeldScalars
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"transformer.h.{l}.";
            var qkv = Conv(Ln(x, p + "ln_1"), p + "attn.c_attn");
            var q = qkv.narrow(1, 0, e).view(t, h, d).permute(1, 0, 2);
            var k = qkv.narrow(1, e, e).view(t, h, d).permute(1, 0, 2);
            var v = qkv.narrow(1, 2 * e, e).view(t, h, d).permute(1, 0, 2);
            var att = q.matmul(k.transpose(1, 2)).DividedBy(Math.Sqrt(d)).masked_fill(causal.eq(zero), minusInfinity).softmax(-1);
            x = x.Plus(Conv(att.matmul(v).permute(1, 0, 2).reshape(t, e), p + "attn.c_proj"));
            var f = Conv(Ln(x, p + "ln_2"), p + "mlp.c_fc");
            f = gelu?.Invoke(f) ?? f.Times(0.5) * f.Plus(f.Pow(3).Times(0.044715)).Times(Math.Sqrt(2 / Math.PI)).tanh().Plus(1);
            x = x.Plus(Conv(f, p + "mlp.c_proj"));
        }
        x = Ln(x, "transformer.ln_f");
        return x.matmul((w.TryGetValue("lm_head.weight", out var head) ? head : w["transformer.wte.weight"]).t());
    }
}
