using Pargs.Models;
using TorchSharp;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// A deliberately naive Gemma-2 / Gemma-3 forward for one unpadded sequence, written from transformers'
/// modeling_gemma2 / modeling_gemma3 and read straight from config.json (with Gemma2Config's / Gemma3TextConfig's
/// defaults written out here, not taken from Pargs' reader) over a plain state dict: explicit repeat_kv, explicit
/// rotary formula per layer type, explicit soft-caps, explicit window mask. The model code must agree with it.
/// </summary>
public static class GemmaReferenceForward
{
    /// <summary>gelu_pytorch_tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    /// <remarks>
    /// Every Scalar here is explicit and held to the end (also in <see cref="Logits"/>; sums go through
    /// <see cref="HeldScalars"/> for the alpha Scalar TorchSharp's + makes). WHY: TorchSharp's implicit
    /// conversion (<c>x.pow(3)</c>, <c>0.5 * x</c>) makes a temporary Scalar whose finalizer frees the native value; its
    /// wrapper is unreachable once its handle is passed, so a collection during the call (any thread allocating) frees
    /// it while libtorch reads it ("Unknown scalar type", c10/core/Scalar.h). Reproduced within seconds by a loop of
    /// these forwards with another thread collecting.
    /// </remarks>
    public static Tensor GeluTanh(Tensor x)
    {
        using Scalar half = 0.5.ToScalar(), one = 1.ToScalar(), three = 3.ToScalar(), cubic = 0.044715.ToScalar(), slope = Math.Sqrt(2 / Math.PI).ToScalar();
        return half * x * (slope * x.Plus(cubic * x.pow(three))).tanh().Plus(one);
    }

    /// <summary>
    /// ggml's CPU GELU (GGML_GELU_FP16): the input rounded to float16 indexes a table of 65536 float16 values, each
    /// ggml_gelu_f32 of that float16 input computed in float32 as ggml writes it (0.5f·x·(1 + tanhf(√(2/π)·x·(1 +
    /// 0.044715·x²)))) and rounded to float16; saturated outside [−10, 10]. What llama.cpp's GeGLU multiplies the up
    /// projection by.
    /// </summary>
    public static Tensor Float16Gelu(Tensor x)
    {
        var values = x.contiguous().data<float>().ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            values[i] = v <= -10f ? 0f : v >= 10f ? v : GgmlGeluTable[BitConverter.HalfToUInt16Bits((Half)v)];
        }
        return tensor(values, x.shape);
    }

    static readonly float[] GgmlGeluTable = BuildGeluTable();

    static float[] BuildGeluTable()
    {
        const float sqrt2OverPi = 0.79788456080286535587989211986876f, coefA = 0.044715f;
        var table = new float[65536];
        for (int i = 0; i < table.Length; i++)
        {
            float v = (float)BitConverter.UInt16BitsToHalf((ushort)i);
            float g = 0.5f * v * (1.0f + MathF.Tanh(sqrt2OverPi * v * (1.0f + coefA * v * v)));
            table[i] = (float)(Half)g;
        }
        return table;
    }

    static double AsDouble(JsonNode n) => double.Parse(n.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Logits [T, vocab] of <paramref name="ids"/> under config.json <paramref name="json"/> and weights <paramref name="w"/>.</summary>
    public static Tensor Logits(JsonObject json, Dictionary<string, Tensor> w, long[] ids, Func<Tensor, Tensor>? gelu = null)
    {
        gelu ??= GeluTanh;
        bool gemma3 = (string)json["model_type"]! == "gemma3_text";
        double Num(string key, double fallback) => json[key] is { } n ? AsDouble(n) : fallback;
        double? Cap(string key, double? fallback) => json.ContainsKey(key) ? json[key] is { } n ? AsDouble(n) : null : fallback;
        int hidden = (int)Num("hidden_size", 2304), heads = (int)Num("num_attention_heads", 8), kvHeads = (int)Num("num_key_value_heads", 4);
        int d = (int)Num("head_dim", 256), layers = (int)Num("num_hidden_layers", 26);
        double eps = Num("rms_norm_eps", 1e-6), scale = Math.Pow(Num("query_pre_attn_scalar", 256), -0.5);
        double? attnCap = Cap("attn_logit_softcapping", gemma3 ? null : 50.0), finalCap = Cap("final_logit_softcapping", gemma3 ? null : 30.0);
        int window = (int)Num("sliding_window", 4096);
        // Explicit Scalars held across the forward: see GeluTanh.
        using Scalar one = 1.ToScalar(), two = 2.ToScalar(), zero = 0.ToScalar(), epsilon = eps.ToScalar(), scaling = scale.ToScalar(),
            masked = double.NegativeInfinity.ToScalar(), attnCapScalar = (attnCap ?? 1).ToScalar(), finalCapScalar = (finalCap ?? 1).ToScalar();
        bool[] sliding = json["layer_types"] is JsonArray types
            ? types.Select(n => (string)n! == "sliding_attention").ToArray()
            : Enumerable.Range(0, layers).Select(i => (i + 1) % (gemma3 ? (int)Num("sliding_window_pattern", 6) : 2) != 0).ToArray();

        // Rotary per layer type: (theta, linear factor). Gemma-3's local layers: rope_local_base_freq, unscaled.
        (double Theta, double Factor) Rope(JsonObject? set, double theta)
        {
            string type = (string?)(set?["rope_type"] ?? set?["type"]) ?? "default";
            if (type is not ("default" or "linear")) throw new ArgumentException($"the reference implements default and linear rotary, not {type}");
            return (set?["rope_theta"] is { } given ? AsDouble(given) : theta, type == "linear" ? AsDouble(set!["factor"]!) : 1.0);
        }
        double globalTheta = Num("rope_theta", gemma3 ? 1_000_000.0 : 10000.0);
        var parameters = json["rope_parameters"] as JsonObject;
        bool perType = parameters?.Any(p => p.Value is JsonObject) == true;
        var global = perType ? Rope(parameters!["full_attention"] as JsonObject, globalTheta) : Rope(parameters ?? json["rope_scaling"] as JsonObject, globalTheta);
        var local = !gemma3 ? global
            : perType && parameters!["sliding_attention"] is JsonObject slidingSet ? Rope(slidingSet, Num("rope_local_base_freq", 10000.0))
            : (Num("rope_local_base_freq", 10000.0), 1.0);

        int t = ids.Length;
        (Tensor Cos, Tensor Sin) Tables((double Theta, double Factor) rope)
        {
            var angles = zeros(t, d / 2, dtype: ScalarType.Float64);
            for (int p = 0; p < t; p++)
                for (int i = 0; i < d / 2; i++)
                    angles[p, i] = p / Math.Pow(rope.Theta, 2.0 * i / d) / rope.Factor;
            return (angles.cos().to(ScalarType.Float32).unsqueeze(1), angles.sin().to(ScalarType.Float32).unsqueeze(1));
        }
        var globalTables = Tables(global);
        var localTables = Tables(local);
        Tensor ApplyRope(Tensor x, (Tensor Cos, Tensor Sin) table) // [T, heads, d]: (x_i, x_{i+d/2}) rotated
        {
            var a = x.narrow(2, 0, d / 2);
            var b = x.narrow(2, d / 2, d / 2);
            return cat(new[] { a * table.Cos - b * table.Sin, (b * table.Cos).Plus(a * table.Sin) }, 2);
        }
        Tensor Rms(Tensor x, Tensor g) => x / x.pow(two).mean(new long[] { -1 }, keepdim: true).Plus(epsilon).sqrt() * g.Plus(one);
        Tensor Lin(Tensor x, string name) => x.matmul(w[name + ".weight"].t()).Plus(w.TryGetValue(name + ".bias", out var b) ? b : zeros(1));

        var causal = ones(t, t).tril();
        var windowed = causal - ones(t, t).tril(-window); // key j visible from i when i − window < j ≤ i
        var x = w["model.embed_tokens.weight"].index_select(0, tensor(ids)) * tensor((float)Math.Sqrt(hidden));
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.";
            var hn = Rms(x, w[p + "input_layernorm.weight"]);
            var q = Lin(hn, p + "self_attn.q_proj").view(t, heads, d);
            var k = Lin(hn, p + "self_attn.k_proj").view(t, kvHeads, d);
            if (gemma3)
            {
                q = Rms(q, w[p + "self_attn.q_norm.weight"]);
                k = Rms(k, w[p + "self_attn.k_norm.weight"]);
            }
            var tables = sliding[l] ? localTables : globalTables;
            q = ApplyRope(q, tables);
            k = ApplyRope(k, tables).repeat_interleave(heads / kvHeads, dim: 1);
            var v = Lin(hn, p + "self_attn.v_proj").view(t, kvHeads, d).repeat_interleave(heads / kvHeads, dim: 1);
            var scores = q.permute(1, 0, 2).matmul(k.permute(1, 2, 0)) * scaling; // [heads, T, T]
            if (attnCap is not null) scores = (scores / attnCapScalar).tanh() * attnCapScalar;
            scores = scores.masked_fill((sliding[l] ? windowed : causal).eq(zero), masked).softmax(-1);
            var o = scores.matmul(v.permute(1, 0, 2)).permute(1, 0, 2).reshape(t, heads * d);
            x = x.Plus(Rms(Lin(o, p + "self_attn.o_proj"), w[p + "post_attention_layernorm.weight"]));
            hn = Rms(x, w[p + "pre_feedforward_layernorm.weight"]);
            var m = Lin(gelu(Lin(hn, p + "mlp.gate_proj")) * Lin(hn, p + "mlp.up_proj"), p + "mlp.down_proj");
            x = x.Plus(Rms(m, w[p + "post_feedforward_layernorm.weight"]));
        }
        x = Rms(x, w["model.norm.weight"]);
        var head = w.TryGetValue("lm_head.weight", out var lmHead) && json["tie_word_embeddings"]?.GetValue<bool>() == false ? lmHead : w["model.embed_tokens.weight"];
        var logits = x.matmul(head.t());
        return finalCap is not null ? (logits / finalCapScalar).tanh() * finalCapScalar : logits;
    }
}
