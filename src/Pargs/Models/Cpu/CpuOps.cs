using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Pargs.Models.Cpu;

/// <summary>
/// The float32 vector loops of Pargs' CPU decode kernels, on raw pointers. Each mirrors one torch op of the
/// reference forward (named in its summary) and is checked against it by the kernel tests. Vector256 maps to
/// AVX2/FMA where the CPU has them and to a portable fallback elsewhere.
/// <para>
/// Every loop is marked AggressiveOptimization: with tiered compilation a method with loops starts as
/// unoptimised code and, called from a long-running decode loop, was measured to stay there for the whole run
/// (a stories260K sibling pass took 4.1 ms instead of 0.8 ms).
/// </para>
/// </summary>
public static unsafe class CpuOps
{
    /// <summary>
    /// nn.functional.linear for a few rows: y[r, o] = bias[o] + Σᵢ x[r, i]·w[o, i] for outputs o in [lo, hi),
    /// x [rows, inF], w [outF, inF] row-major, y [rows, outF]. Four weight rows are read once and applied to
    /// every input row while they sit in L1: the weights stream from memory once per call, whatever the rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatMul(float* x, int rows, int inF, float* w, float* bias, float* y, int outF, int lo, int hi)
    {
        int o = lo;
        for (; o + 4 <= hi; o += 4)
        {
            float* w0 = w + (long)o * inF;
            int r = 0;
            // Two input rows at a time: eight independent accumulators keep both FMA pipes busy, and each weight
            // vector loaded serves two rows (rows > 1: sibling candidates, batches).
            for (; r + 2 <= rows; r += 2)
                Block4x2(x + (long)r * inF, inF, w0, bias == null ? null : bias + o, y + (long)r * outF + o, outF);
            if (r < rows)
                Block4x1(x + (long)r * inF, inF, w0, bias == null ? null : bias + o, y + (long)r * outF + o);
        }
        for (; o < hi; o++)
            for (int r = 0; r < rows; r++)
                y[(long)r * outF + o] = Dot(x + (long)r * inF, w + (long)o * inF, inF) + (bias != null ? bias[o] : 0f);
    }

    /// <summary>Outputs o..o+3 (weight rows w0..w0+3·inF) of one input row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    static void Block4x1(float* x, int inF, float* w0, float* bias, float* y)
    {
        float* w1 = w0 + inF, w2 = w1 + inF, w3 = w2 + inF;
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        int i = 0;
        for (; i + 8 <= inF; i += 8)
        {
            var xv = Vector256.Load(x + i);
            a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w0 + i), xv, a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + i), xv, a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + i), xv, a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + i), xv, a3);
        }
        float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
        for (; i < inF; i++)
        {
            s0 += w0[i] * x[i]; s1 += w1[i] * x[i]; s2 += w2[i] * x[i]; s3 += w3[i] * x[i];
        }
        if (bias != null) { s0 += bias[0]; s1 += bias[1]; s2 += bias[2]; s3 += bias[3]; }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
    }

    /// <summary>Outputs o..o+3 of input rows x and x+inF, written at y and y+outF.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    static void Block4x2(float* x, int inF, float* w0, float* bias, float* y, int outF)
    {
        float* w1 = w0 + inF, w2 = w1 + inF, w3 = w2 + inF, x1 = x + inF;
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        int i = 0;
        for (; i + 8 <= inF; i += 8)
        {
            var xa = Vector256.Load(x + i);
            var xb = Vector256.Load(x1 + i);
            var v0 = Vector256.Load(w0 + i);
            var v1 = Vector256.Load(w1 + i);
            var v2 = Vector256.Load(w2 + i);
            var v3 = Vector256.Load(w3 + i);
            a0 = Vector256.FusedMultiplyAdd(v0, xa, a0); b0 = Vector256.FusedMultiplyAdd(v0, xb, b0);
            a1 = Vector256.FusedMultiplyAdd(v1, xa, a1); b1 = Vector256.FusedMultiplyAdd(v1, xb, b1);
            a2 = Vector256.FusedMultiplyAdd(v2, xa, a2); b2 = Vector256.FusedMultiplyAdd(v2, xb, b2);
            a3 = Vector256.FusedMultiplyAdd(v3, xa, a3); b3 = Vector256.FusedMultiplyAdd(v3, xb, b3);
        }
        float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
        float t0 = Vector256.Sum(b0), t1 = Vector256.Sum(b1), t2 = Vector256.Sum(b2), t3 = Vector256.Sum(b3);
        for (; i < inF; i++)
        {
            s0 += w0[i] * x[i]; s1 += w1[i] * x[i]; s2 += w2[i] * x[i]; s3 += w3[i] * x[i];
            t0 += w0[i] * x1[i]; t1 += w1[i] * x1[i]; t2 += w2[i] * x1[i]; t3 += w3[i] * x1[i];
        }
        if (bias != null)
        {
            s0 += bias[0]; s1 += bias[1]; s2 += bias[2]; s3 += bias[3];
            t0 += bias[0]; t1 += bias[1]; t2 += bias[2]; t3 += bias[3];
        }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
        float* y1 = y + outF;
        y1[0] = t0; y1[1] = t1; y1[2] = t2; y1[3] = t3;
    }

    /// <summary>Σᵢ a[i]·b[i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public static float Dot(float* a, float* b, int n)
    {
        var acc = Vector256<float>.Zero;
        int i = 0;
        for (; i + 8 <= n; i += 8) acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc);
        float s = Vector256.Sum(acc);
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>RmsNorm: y = x / √(mean(x²) + eps) · weight.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RmsNorm(float* x, float* weight, double eps, float* y, int n)
    {
        float scale = (float)(1.0 / Math.Sqrt(Dot(x, x, n) / n + eps));
        int i = 0;
        var s = Vector256.Create(scale);
        for (; i + 8 <= n; i += 8) (Vector256.Load(x + i) * s * Vector256.Load(weight + i)).Store(y + i);
        for (; i < n; i++) y[i] = x[i] * scale * weight[i];
    }

    /// <summary>
    /// RotaryEmbedding.Apply on one head in place: x·cos + roll(x, D/2)·signedSin, with the cos / signed-sin
    /// table rows of the token's position.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rotary(float* x, float* cos, float* signedSin, int headDim)
    {
        int half = headDim / 2;
        for (int i = 0; i < half; i++)
        {
            float x1 = x[i], x2 = x[i + half];
            x[i] = x1 * cos[i] + x2 * signedSin[i];
            x[i + half] = x2 * cos[i + half] + x1 * signedSin[i + half];
        }
    }

    /// <summary>
    /// scaled_dot_product_attention for the <paramref name="queries"/> query rows [queries, D] that share one kv
    /// head: scores [queries, slots] = q·Kᵀ/√D as one small matrix product (each key read once for all queries,
    /// the horizontal sums amortised), then per query a softmax over its allowed slots and Σ p_s·v_s.
    /// keys/values point at slot 0 of the head's cache ([slots, D] contiguous); allowed[i] is query i's mask row
    /// of <paramref name="slots"/> booleans; output rows are written at <paramref name="output"/>[i·outputStride].
    /// <paramref name="scores"/> is scratch of queries × slots floats.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Attend(float* q, int queries, float* keys, float* values, bool** allowed, int slots, int headDim,
                              float* scores, float** output)
    {
        MatMul(q, queries, headDim, keys, null, scores, slots, 0, slots);
        float scale = 1f / MathF.Sqrt(headDim);
        for (int i = 0; i < queries; i++)
        {
            float* row = scores + (long)i * slots;
            bool* mask = allowed[i];
            float* o = output[i];
            new Span<float>(o, headDim).Clear();
            float max = float.NegativeInfinity;
            for (int s = 0; s < slots; s++)
                if (mask[s] && row[s] > max) max = row[s];
            if (float.IsNegativeInfinity(max)) continue; // nothing allowed (never happens: every query sees itself)
            float total = 0;
            for (int s = 0; s < slots; s++)
            {
                if (!mask[s]) continue;
                float p = MathF.Exp((row[s] - max) * scale);
                total += p;
                Axpy(p, values + (long)s * headDim, o, headDim);
            }
            Scale(o, 1f / total, headDim);
        }
    }

    /// <summary>y += a·x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Axpy(float a, float* x, float* y, int n)
    {
        int i = 0;
        var av = Vector256.Create(a);
        for (; i + 8 <= n; i += 8) Vector256.FusedMultiplyAdd(av, Vector256.Load(x + i), Vector256.Load(y + i)).Store(y + i);
        for (; i < n; i++) y[i] += a * x[i];
    }

    /// <summary>x *= a.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scale(float* x, float a, int n)
    {
        int i = 0;
        var av = Vector256.Create(a);
        for (; i + 8 <= n; i += 8) (Vector256.Load(x + i) * av).Store(x + i);
        for (; i < n; i++) x[i] *= a;
    }

    /// <summary>x += y (the residual connection).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add(float* x, float* y, int n)
    {
        int i = 0;
        for (; i + 8 <= n; i += 8) (Vector256.Load(x + i) + Vector256.Load(y + i)).Store(x + i);
        for (; i < n; i++) x[i] += y[i];
    }

    /// <summary>LlamaMlp's silu(gate) · up, into gate.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SiluMul(float* gate, float* up, int n)
    {
        for (int i = 0; i < n; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }
}
