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
        if (rows == 1)
        {
            MatVec(x, inF, w, bias, y, lo, hi);
            return;
        }
        // While a block's four weight rows serve every input row, the block after next is prefetched, a cache
        // line every few FMAs: for a few rows the weights stream from memory once and the first pass over a block
        // otherwise stalls on them (measured 14 → 18-25 GMAC/s on ten rows, cold weights). Matrices that fit in
        // L2 (stories260K's) skip it: the prefetches would only cost instructions.
        bool prefetching = (long)outF * inF >= (1 << 16);
        long iterations = Math.Max(1, (rows / 2) * (long)(inF / 8));
        long step = 16 * Math.Max(1, (4L * inF / 16 + iterations - 1) / iterations);
        int o = lo;
        for (; o + 4 <= hi; o += 4)
        {
            float* w0 = w + (long)o * inF;
            var prefetch = new Prefetch(w0 + 8L * inF, prefetching ? Math.Clamp((long)(hi - o - 8) * inF, 0, 4L * inF) : 0, step);
            int r = 0;
            // Two input rows at a time: eight independent accumulators keep both FMA pipes busy, and each weight
            // vector loaded serves two rows (rows > 1: sibling candidates, batches).
            for (; r + 2 <= rows; r += 2)
                Block4x2(x + (long)r * inF, inF, w0, bias == null ? null : bias + o, y + (long)r * outF + o, outF, ref prefetch);
            if (r < rows) MatVec(x + (long)r * inF, inF, w, bias, y + (long)r * outF, o, o + 4);
        }
        if (o < hi)
            for (int r = 0; r < rows; r++) MatVec(x + (long)r * inF, inF, w, bias, y + (long)r * outF, o, hi);
    }

    /// <summary>
    /// One input row (a decoding step at batch 1; also a product's odd row and last outputs): weight rows one
    /// after another, four accumulators along each, so the weights are read as one sequential stream — measured
    /// 1.3–1.7× faster than four interleaved rows when rows are short (288 floats: stories15M), where streaming,
    /// not arithmetic, is the cost.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MatVec(float* x, int inF, float* w, float* bias, float* y, int lo, int hi)
    {
        for (int o = lo; o < hi; o++)
        {
            float* row = w + (long)o * inF;
            var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
            int i = 0;
            for (; i + 32 <= inF; i += 32)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(row + i), Vector256.Load(x + i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(row + i + 8), Vector256.Load(x + i + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(row + i + 16), Vector256.Load(x + i + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(row + i + 24), Vector256.Load(x + i + 24), a3);
            }
            for (; i + 8 <= inF; i += 8) a0 = Vector256.FusedMultiplyAdd(Vector256.Load(row + i), Vector256.Load(x + i), a0);
            float sum = Vector256.Sum((a0 + a1) + (a2 + a3));
            for (; i < inF; i++) sum += row[i] * x[i];
            y[o] = sum + (bias != null ? bias[o] : 0f);
        }
    }

    /// <summary>A region to pull into cache a cache line at a time, spread over a loop's iterations.</summary>
    struct Prefetch(float* start, long length, long step)
    {
        long position;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Next()
        {
            if (position >= length) return;
            if (Sse.IsSupported) Sse.Prefetch0(start + position);
            position += step;
        }
    }

    /// <summary>Outputs o..o+3 of input rows x and x+inF, written at y and y+outF.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    static void Block4x2(float* x, int inF, float* w0, float* bias, float* y, int outF, ref Prefetch prefetch)
    {
        float* w1 = w0 + inF, w2 = w1 + inF, w3 = w2 + inF, x1 = x + inF;
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        int i = 0;
        for (; i + 8 <= inF; i += 8)
        {
            prefetch.Next();
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
    /// head: scores = q·Kᵀ/√D + mask, then per query a softmax and Σ p_s·v_s. keys/values point at slot 0 of the
    /// head's cache ([slots, D] contiguous); maskAdd[i] is query i's additive mask row (0 = may attend, −inf =
    /// may not) of <paramref name="slots"/> floats; query i's output is written at output[i].
    /// <paramref name="scores"/> is scratch of queries × slots floats.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Attend(float* q, int queries, float* keys, float* values, float** maskAdd, int slots, int headDim,
                              float* scores, float** output)
    {
        float scale = 1f / MathF.Sqrt(headDim);
        if (queries >= 4 && headDim % 8 == 0 && headDim <= 16) ScoresBySlotBlocks(q, queries, keys, maskAdd, slots, headDim, scale, scores);
        else
        {
            MatMul(q, queries, headDim, keys, null, scores, slots, 0, slots);
            for (int i = 0; i < queries; i++) ScaleAndMask(scores + (long)i * slots, scale, maskAdd[i], slots);
        }
        for (int i = 0; i < queries; i++)
        {
            float* row = scores + (long)i * slots;
            float* o = output[i];
            float max = Max(row, slots);
            if (float.IsNegativeInfinity(max)) // nothing allowed (never happens: every query sees itself)
            {
                new Span<float>(o, headDim).Clear();
                continue;
            }
            float total = SoftmaxNumerators(row, slots, max);
            WeightedSum(row, values, slots, headDim, o);
            Scale(o, 1f / total, headDim);
        }
    }

    /// <summary>
    /// Scores of many queries against one head's keys, eight slots at a time: the 8 × D key block is transposed
    /// once into D vectors of 8 slots, and every query then gets its 8 scores from D broadcast FMAs — no
    /// horizontal sums, which dominate a dot product when D is small (stories260K: D = 8) and the sibling
    /// candidates of a row share every key.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ScoresBySlotBlocks(float* q, int queries, float* keys, float** maskAdd, int slots, int headDim, float scale, float* scores)
    {
        float* block = stackalloc float[headDim * 8];
        var scaleV = Vector256.Create(scale);
        int s0 = 0;
        for (; s0 + 8 <= slots; s0 += 8)
        {
            for (int j = 0; j < 8; j++)
            {
                float* key = keys + (long)(s0 + j) * headDim;
                for (int d = 0; d < headDim; d++) block[d * 8 + j] = key[d];
            }
            int i = 0;
            // Four queries at a time: four independent FMA chains, one load of each key vector for all four.
            for (; i + 4 <= queries; i += 4)
            {
                float* q0 = q + (long)i * headDim, q1 = q0 + headDim, q2 = q1 + headDim, q3 = q2 + headDim;
                var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
                for (int d = 0; d < headDim; d++)
                {
                    var kd = Vector256.Load(block + d * 8);
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Create(q0[d]), kd, a0);
                    a1 = Vector256.FusedMultiplyAdd(Vector256.Create(q1[d]), kd, a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.Create(q2[d]), kd, a2);
                    a3 = Vector256.FusedMultiplyAdd(Vector256.Create(q3[d]), kd, a3);
                }
                Vector256.FusedMultiplyAdd(a0, scaleV, Vector256.Load(maskAdd[i] + s0)).Store(scores + (long)i * slots + s0);
                Vector256.FusedMultiplyAdd(a1, scaleV, Vector256.Load(maskAdd[i + 1] + s0)).Store(scores + (long)(i + 1) * slots + s0);
                Vector256.FusedMultiplyAdd(a2, scaleV, Vector256.Load(maskAdd[i + 2] + s0)).Store(scores + (long)(i + 2) * slots + s0);
                Vector256.FusedMultiplyAdd(a3, scaleV, Vector256.Load(maskAdd[i + 3] + s0)).Store(scores + (long)(i + 3) * slots + s0);
            }
            for (; i < queries; i++)
            {
                float* qi = q + (long)i * headDim;
                var a0 = Vector256<float>.Zero; var a1 = a0;
                for (int d = 0; d < headDim; d += 2)
                {
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Create(qi[d]), Vector256.Load(block + d * 8), a0);
                    a1 = Vector256.FusedMultiplyAdd(Vector256.Create(qi[d + 1]), Vector256.Load(block + (d + 1) * 8), a1);
                }
                Vector256.FusedMultiplyAdd(a0 + a1, scaleV, Vector256.Load(maskAdd[i] + s0)).Store(scores + (long)i * slots + s0);
            }
        }
        for (int s = s0; s < slots; s++)
            for (int i = 0; i < queries; i++)
                scores[(long)i * slots + s] = Dot(q + (long)i * headDim, keys + (long)s * headDim, headDim) * scale + maskAdd[i][s];
    }

    /// <summary>row = row·scale + mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ScaleAndMask(float* row, float scale, float* mask, int n)
    {
        var scaleV = Vector256.Create(scale);
        int i = 0;
        for (; i + 8 <= n; i += 8) Vector256.FusedMultiplyAdd(Vector256.Load(row + i), scaleV, Vector256.Load(mask + i)).Store(row + i);
        for (; i < n; i++) row[i] = row[i] * scale + mask[i];
    }

    /// <summary>max of x (−inf when n = 0 or everything is −inf).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float Max(float* x, int n)
    {
        var m = Vector256.Create(float.NegativeInfinity);
        int i = 0;
        for (; i + 8 <= n; i += 8) m = Vector256.Max(m, Vector256.Load(x + i));
        float max = float.NegativeInfinity;
        for (int j = 0; j < 8; j++) max = Math.Max(max, m.GetElement(j));
        for (; i < n; i++) max = Math.Max(max, x[i]);
        return max;
    }

    /// <summary>
    /// output[d] = Σ_s p[s]·v[s, d] for v [slots, D]. Slots outer, four at a time, so each value row is read once
    /// while it is in L1 (a pass over all slots per eight dimensions re-read V from L2 D/8 times: measured 6×
    /// slower at D = 48); the four products are summed in registers before touching the output.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WeightedSum(float* p, float* v, int slots, int headDim, float* output)
    {
        if (headDim == 8)
        {
            WeightedSum8(p, v, slots, output);
            return;
        }
        new Span<float>(output, headDim).Clear();
        int s = 0;
        for (; s + 4 <= slots; s += 4)
        {
            if (p[s] == 0f && p[s + 1] == 0f && p[s + 2] == 0f && p[s + 3] == 0f) continue; // masked (padding)
            var p0 = Vector256.Create(p[s]); var p1 = Vector256.Create(p[s + 1]);
            var p2 = Vector256.Create(p[s + 2]); var p3 = Vector256.Create(p[s + 3]);
            float* v0 = v + (long)s * headDim, v1 = v0 + headDim, v2 = v1 + headDim, v3 = v2 + headDim;
            int d = 0;
            for (; d + 8 <= headDim; d += 8)
            {
                var t = Vector256.FusedMultiplyAdd(p1, Vector256.Load(v1 + d), p0 * Vector256.Load(v0 + d));
                var u = Vector256.FusedMultiplyAdd(p3, Vector256.Load(v3 + d), p2 * Vector256.Load(v2 + d));
                (Vector256.Load(output + d) + (t + u)).Store(output + d);
            }
            for (; d < headDim; d++) output[d] += p[s] * v0[d] + p[s + 1] * v1[d] + p[s + 2] * v2[d] + p[s + 3] * v3[d];
        }
        for (; s < slots; s++)
            if (p[s] != 0f) Axpy(p[s], v + (long)s * headDim, output, headDim);
    }

    /// <summary>
    /// <see cref="WeightedSum"/> for D = 8 (stories260K): one vector per value row, four register accumulators over
    /// the slots, no memory traffic for the output until the end.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WeightedSum8(float* p, float* v, int slots, float* output)
    {
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        int s = 0;
        for (; s + 4 <= slots; s += 4)
        {
            a0 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s]), Vector256.Load(v + (long)s * 8), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s + 1]), Vector256.Load(v + (long)(s + 1) * 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s + 2]), Vector256.Load(v + (long)(s + 2) * 8), a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s + 3]), Vector256.Load(v + (long)(s + 3) * 8), a3);
        }
        for (; s < slots; s++) a0 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s]), Vector256.Load(v + (long)s * 8), a0);
        ((a0 + a1) + (a2 + a3)).Store(output);
    }

    /// <summary>x[i] = exp(x[i] − max) in place, eight at a time; returns their sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float SoftmaxNumerators(float* x, int n, float max)
    {
        var maxV = Vector256.Create(max);
        var sum = Vector256<float>.Zero;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var e = Exp(Vector256.Load(x + i) - maxV);
            e.Store(x + i);
            sum += e;
        }
        if (i < n)
        {
            // The last 1-7 values through the same vector exp (padding lanes are −inf, whose exp is 0): a scalar
            // MathF.Exp each cost as much as the whole vector loop for rows of ~100 slots.
            var tail = stackalloc float[8];
            new Span<float>(tail, 8).Fill(float.NegativeInfinity);
            for (int j = i; j < n; j++) tail[j - i] = x[j];
            var e = Exp(Vector256.Load(tail) - maxV);
            sum += e;
            e.Store(tail);
            for (int j = i; j < n; j++) x[j] = tail[j - i];
        }
        return Vector256.Sum(sum);
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
        var scale = ((Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23).AsSingle();
        return Vector256.ConditionalSelect(underflow, Vector256<float>.Zero, e * scale);
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
