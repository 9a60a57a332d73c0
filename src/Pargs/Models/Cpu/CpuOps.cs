using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
/// <para>
/// Three files: this one (norm, rotary, exp and the element-wise ops), <c>CpuOps.MatMul.cs</c> (the weight
/// products) and <c>CpuOps.Attention.cs</c> (attention of a few queries over a kv head's cache).
/// </para>
/// </summary>
public static unsafe partial class CpuOps
{
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
    /// Gemma's RmsNorm: y = x / √(mean(x²) + eps) · (1 + weight), the stored weight being the offset from one; (1 + w)
    /// rounded to float32 first, as transformers' float32 <c>1.0 + weight</c> is.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RmsNormPlusOne(float* x, float* weight, double eps, float* y, int n)
    {
        float scale = (float)(1.0 / Math.Sqrt(Dot(x, x, n) / n + eps));
        int i = 0;
        var s = Vector256.Create(scale);
        var one = Vector256.Create(1f);
        for (; i + 8 <= n; i += 8) (Vector256.Load(x + i) * s * (one + Vector256.Load(weight + i))).Store(y + i);
        for (; i < n; i++) y[i] = x[i] * scale * (1f + weight[i]);
    }

    /// <summary>
    /// RotaryEmbedding.Apply on one head in place: x·cos + roll(x, D/2)·signedSin, with the cos / signed-sin
    /// table rows of the token's position.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rotary(float* x, float* cos, float* signedSin, int headDim)
    {
        int half = headDim / 2;
        // Four or eight lanes at a time, the same products and sum per element as the scalar loop (no FMA): same bits.
        // WHY: stories260K's 8-wide heads (half 4) rotate 12 heads per token and layer; the scalar loop was ~1.5 % of a
        // sibling forward.
        int i = 0;
        for (; i + 8 <= half; i += 8)
        {
            var x1 = Vector256.Load(x + i); var x2 = Vector256.Load(x + i + half);
            (x1 * Vector256.Load(cos + i) + x2 * Vector256.Load(signedSin + i)).Store(x + i);
            (x2 * Vector256.Load(cos + i + half) + x1 * Vector256.Load(signedSin + i + half)).Store(x + i + half);
        }
        for (; i + 4 <= half; i += 4)
        {
            var x1 = Vector128.Load(x + i); var x2 = Vector128.Load(x + i + half);
            (x1 * Vector128.Load(cos + i) + x2 * Vector128.Load(signedSin + i)).Store(x + i);
            (x2 * Vector128.Load(cos + i + half) + x1 * Vector128.Load(signedSin + i + half)).Store(x + i + half);
        }
        for (; i < half; i++)
        {
            float x1 = x[i], x2 = x[i + half];
            x[i] = x1 * cos[i] + x2 * signedSin[i];
            x[i + half] = x2 * cos[i + half] + x1 * signedSin[i + half];
        }
    }

    /// <summary>
    /// e^x, eight at a time (Cephes' expf: x = n·ln2 + r, |r| ≤ ln2/2, degree-5 polynomial for e^r, 2^n built in
    /// the exponent bits; relative error ~2e-7). Below −87, and for −inf, exactly 0; above 88, e^88.
    /// WHY not Vector256.Exp: measured 5× slower, and attention runs one per (query, slot).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var underflow = Vector256.LessThan(x, Vector256.Create(-87f));
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(-87f)), Vector256.Create(88f));
        var n = Vector256.Round(x * Vector256.Create(1.44269504088896341f));
        var r = x - n * Vector256.Create(0.693359375f) + n * Vector256.Create(2.12194440e-4f);
        var r2 = r * r;
        var poly = Vector256.Create(1.9875691500e-4f);
        poly = Vector256.FusedMultiplyAdd(poly, r, Vector256.Create(1.3981999507e-3f));
        poly = Vector256.FusedMultiplyAdd(poly, r, Vector256.Create(8.3334519073e-3f));
        poly = Vector256.FusedMultiplyAdd(poly, r, Vector256.Create(4.1665795894e-2f));
        poly = Vector256.FusedMultiplyAdd(poly, r, Vector256.Create(1.6666665459e-1f));
        poly = Vector256.FusedMultiplyAdd(poly, r, Vector256.Create(5.0000001201e-1f));
        var e = Vector256.FusedMultiplyAdd(poly, r2, r + Vector256<float>.One);
        // n is a whole number in [−126, 127] here (for a NaN x it is garbage, but e is NaN then): the native
        // conversion needs no saturation fix-ups.
        var scale = ((Vector256.ConvertToInt32Native(n) + Vector256.Create(127)) << 23).AsSingle();
        return Vector256.AndNot(e * scale, underflow);
    }

    /// <summary>
    /// n floats from src to dst (not overlapping). WHY: a decode step copies many 8-float heads (stories260K's queries
    /// gathered for attention, new keys and values into the cache); Buffer.MemoryCopy's call cost dominated a 32-byte copy.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CopyFloats(float* src, float* dst, int n)
    {
        if (n == 8) Vector256.Load(src).Store(dst);
        else Buffer.MemoryCopy(src, dst, n * 4L, n * 4L);
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

    /// <summary>LlamaMlp's silu(gate) · up = gate / (1 + e^−gate) · up, into gate.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SiluMul(float* gate, float* up, int n)
    {
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var g = Vector256.Load(gate + i);
            (g / (Vector256<float>.One + Exp(-g)) * Vector256.Load(up + i)).Store(gate + i);
        }
        for (; i < n; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }
}
