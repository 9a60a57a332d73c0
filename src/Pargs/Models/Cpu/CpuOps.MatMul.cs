using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Models.Cpu;

// CpuOps, part 2 of 3: nn.functional.linear for one to a few rows (decoding steps, sibling candidates, small prefills).
public static unsafe partial class CpuOps
{
    /// <summary>
    /// nn.functional.linear for a few rows: y[r, o] = bias[o] + Σᵢ x[r, i]·w[o, i] for outputs o in [lo, hi),
    /// x [rows, inF], w [outF, inF] row-major, y [rows, outF]. Four weight rows are read once and applied to
    /// every input row while they sit in L1: the weights stream from memory once per call, whatever the rows.
    /// <paramref name="kept"/>: w's model keeps its <see cref="CpuGemm"/> panels (held for inference only).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatMul(float* x, int rows, int inF, float* w, float* bias, float* y, int outF, int lo, int hi, KeptPanels? kept = null)
    {
        if (rows == 1)
        {
            MatVec(x, inF, w, bias, y, lo, hi);
            return;
        }
        // From a few rows on, the register-blocked outer-product GEMM (CpuGemm: no horizontal sums, one summation
        // order per output whatever the row count) is several times faster than the dot-product blocks below.
        if (CpuGemm.Takes(rows, inF, outF) || (kept is not null && CpuGemm.TakesKept(rows, inF, outF)))
        {
            CpuGemm.Multiply(x, rows, inF, w, bias, y, outF, lo, hi, kept);
            return;
        }
        // While a block's four weight rows serve every input row, the block after next is prefetched, a cache
        // line every few FMAs: for a few rows the weights stream from memory once and the first pass over a block
        // otherwise stalls on them (measured 14 → 18-25 GMAC/s on ten rows, cold weights). Matrices that fit in
        // L2 (stories260K's) skip it: the prefetches would only cost instructions.
        bool prefetching = (long)outF * inF >= (1 << 16);
        long iterations = Math.Max(1, RowBlocks(rows) * (long)(inF / 8));
        long step = 16 * Math.Max(1, (4L * inF / 16 + iterations - 1) / iterations);
        int o = lo;
        for (; o + 4 <= hi; o += 4)
        {
            float* w0 = w + (long)o * inF;
            var prefetch = new Prefetch(w0 + 8L * inF, prefetching ? Math.Clamp((long)(hi - o - 8) * inF, 0, 4L * inF) : 0, step);
            int r = 0;
            // Three input rows at a time where the rest allows (10 = 3 + 3 + 2 + 2, see RowBlocks), else two: twelve (eight)
            // independent accumulators keep both FMA pipes busy, and each weight vector loaded serves three (two)
            // rows — three make it 12 FMAs per 7 loads instead of 8 per 6 (sibling candidates, batches).
            for (int block; rows - r >= 2; r += block)
            {
                float* xr = x + (long)r * inF, yr = y + (long)r * outF + o, br = bias == null ? null : bias + o;
                block = NextRowBlock(rows - r);
                if (block == 3) Block4x3(xr, inF, w0, br, yr, outF, ref prefetch);
                else Block4x2(xr, inF, w0, br, yr, outF, ref prefetch);
            }
            if (r < rows) MatVec(x + (long)r * inF, inF, w, bias, y + (long)r * outF, o, o + 4);
        }
        if (o < hi)
            for (int r = 0; r < rows; r++) MatVec(x + (long)r * inF, inF, w, bias, y + (long)r * outF, o, hi);
    }

    /// <summary>How many 3- or 2-row blocks <see cref="MatMul"/> splits <paramref name="rows"/> into (a last single row aside).</summary>
    static int RowBlocks(int rows)
    {
        int blocks = 0;
        for (int left = rows; left >= 2; blocks++) left -= NextRowBlock(left);
        return blocks;
    }

    /// <summary>The next block's rows when <paramref name="left"/> ≥ 2 rows remain: 3, unless that would leave a single row.</summary>
    static int NextRowBlock(int left) => left >= 3 && left != 4 ? 3 : 2;

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

    /// <summary>
    /// Outputs o..o+3 of input rows x and x+inF, written at y and y+outF. The eight dot products end in one
    /// <see cref="SumEach"/> (nine instructions, against about eighty for eight separate horizontal sums: a
    /// third of the block's instructions when rows are 64 floats, stories260K's), and a row length that is not a
    /// multiple of 8 ends in one masked step instead of a scalar tail.
    /// </summary>
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
        if (i < inF && Avx.IsSupported)
        {
            // The last 1–7 floats of every row: masked loads read zeros past the row (and never fault).
            var m = TailMask(inF - i);
            var xa = Avx.MaskLoad(x + i, m);
            var xb = Avx.MaskLoad(x1 + i, m);
            var v0 = Avx.MaskLoad(w0 + i, m);
            var v1 = Avx.MaskLoad(w1 + i, m);
            var v2 = Avx.MaskLoad(w2 + i, m);
            var v3 = Avx.MaskLoad(w3 + i, m);
            a0 = Vector256.FusedMultiplyAdd(v0, xa, a0); b0 = Vector256.FusedMultiplyAdd(v0, xb, b0);
            a1 = Vector256.FusedMultiplyAdd(v1, xa, a1); b1 = Vector256.FusedMultiplyAdd(v1, xb, b1);
            a2 = Vector256.FusedMultiplyAdd(v2, xa, a2); b2 = Vector256.FusedMultiplyAdd(v2, xb, b2);
            a3 = Vector256.FusedMultiplyAdd(v3, xa, a3); b3 = Vector256.FusedMultiplyAdd(v3, xb, b3);
            i = inF;
        }
        // [Σa0 … Σa3 | Σb0 … Σb3]: row x's four outputs in the low half, row x1's in the high half.
        var sums = SumEach(a0, a1, a2, a3, b0, b1, b2, b3);
        for (; i < inF; i++) // without AVX only
            sums += Vector256.Create(w0[i] * x[i], w1[i] * x[i], w2[i] * x[i], w3[i] * x[i],
                                     w0[i] * x1[i], w1[i] * x1[i], w2[i] * x1[i], w3[i] * x1[i]);
        if (bias != null)
        {
            var b = Vector128.Load(bias);
            sums += Vector256.Create(b, b);
        }
        sums.GetLower().Store(y);
        sums.GetUpper().Store(y + outF);
    }

    /// <summary><see cref="Block4x2"/> for three input rows (x, x + inF, x + 2·inF).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    static void Block4x3(float* x, int inF, float* w0, float* bias, float* y, int outF, ref Prefetch prefetch)
    {
        float* w1 = w0 + inF, w2 = w1 + inF, w3 = w2 + inF, x1 = x + inF, x2 = x1 + inF;
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        var c0 = a0; var c1 = a0; var c2 = a0; var c3 = a0;
        int i = 0;
        for (; i + 8 <= inF; i += 8)
        {
            prefetch.Next();
            var xa = Vector256.Load(x + i);
            var xb = Vector256.Load(x1 + i);
            var xc = Vector256.Load(x2 + i);
            var v = Vector256.Load(w0 + i);
            a0 = Vector256.FusedMultiplyAdd(v, xa, a0); b0 = Vector256.FusedMultiplyAdd(v, xb, b0); c0 = Vector256.FusedMultiplyAdd(v, xc, c0);
            v = Vector256.Load(w1 + i);
            a1 = Vector256.FusedMultiplyAdd(v, xa, a1); b1 = Vector256.FusedMultiplyAdd(v, xb, b1); c1 = Vector256.FusedMultiplyAdd(v, xc, c1);
            v = Vector256.Load(w2 + i);
            a2 = Vector256.FusedMultiplyAdd(v, xa, a2); b2 = Vector256.FusedMultiplyAdd(v, xb, b2); c2 = Vector256.FusedMultiplyAdd(v, xc, c2);
            v = Vector256.Load(w3 + i);
            a3 = Vector256.FusedMultiplyAdd(v, xa, a3); b3 = Vector256.FusedMultiplyAdd(v, xb, b3); c3 = Vector256.FusedMultiplyAdd(v, xc, c3);
        }
        if (i < inF && Avx.IsSupported)
        {
            var m = TailMask(inF - i);
            var xa = Avx.MaskLoad(x + i, m);
            var xb = Avx.MaskLoad(x1 + i, m);
            var xc = Avx.MaskLoad(x2 + i, m);
            var v = Avx.MaskLoad(w0 + i, m);
            a0 = Vector256.FusedMultiplyAdd(v, xa, a0); b0 = Vector256.FusedMultiplyAdd(v, xb, b0); c0 = Vector256.FusedMultiplyAdd(v, xc, c0);
            v = Avx.MaskLoad(w1 + i, m);
            a1 = Vector256.FusedMultiplyAdd(v, xa, a1); b1 = Vector256.FusedMultiplyAdd(v, xb, b1); c1 = Vector256.FusedMultiplyAdd(v, xc, c1);
            v = Avx.MaskLoad(w2 + i, m);
            a2 = Vector256.FusedMultiplyAdd(v, xa, a2); b2 = Vector256.FusedMultiplyAdd(v, xb, b2); c2 = Vector256.FusedMultiplyAdd(v, xc, c2);
            v = Avx.MaskLoad(w3 + i, m);
            a3 = Vector256.FusedMultiplyAdd(v, xa, a3); b3 = Vector256.FusedMultiplyAdd(v, xb, b3); c3 = Vector256.FusedMultiplyAdd(v, xc, c3);
            i = inF;
        }
        var ab = SumEach(a0, a1, a2, a3, b0, b1, b2, b3);
        var cc = SumEach(c0, c1, c2, c3, c0, c1, c2, c3).GetLower();
        for (; i < inF; i++) // without AVX only
        {
            ab += Vector256.Create(w0[i] * x[i], w1[i] * x[i], w2[i] * x[i], w3[i] * x[i],
                                   w0[i] * x1[i], w1[i] * x1[i], w2[i] * x1[i], w3[i] * x1[i]);
            cc += Vector128.Create(w0[i] * x2[i], w1[i] * x2[i], w2[i] * x2[i], w3[i] * x2[i]);
        }
        if (bias != null)
        {
            var b = Vector128.Load(bias);
            ab += Vector256.Create(b, b);
            cc += b;
        }
        ab.GetLower().Store(y);
        ab.GetUpper().Store(y + outF);
        cc.Store(y + 2L * outF);
    }

    /// <summary>A load mask of the first <paramref name="count"/> (1–7) lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> TailMask(int count)
        => Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(count)).AsSingle();


    /// <summary>[Σ a0, Σ a1, …, Σ a7]: the lane sums of eight vectors in one vector (a transpose by horizontal adds).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    static Vector256<float> SumEach(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3,
                                    Vector256<float> a4, Vector256<float> a5, Vector256<float> a6, Vector256<float> a7)
    {
        if (!Avx.IsSupported)
            return Vector256.Create(Vector256.Sum(a0), Vector256.Sum(a1), Vector256.Sum(a2), Vector256.Sum(a3),
                                    Vector256.Sum(a4), Vector256.Sum(a5), Vector256.Sum(a6), Vector256.Sum(a7));
        // Per 128-bit half: [Σ a0, Σ a1, Σ a2, Σ a3] of that half's lanes, then the two halves added.
        var low = Avx.HorizontalAdd(Avx.HorizontalAdd(a0, a1), Avx.HorizontalAdd(a2, a3));
        var high = Avx.HorizontalAdd(Avx.HorizontalAdd(a4, a5), Avx.HorizontalAdd(a6, a7));
        return Avx.Add(Avx.Permute2x128(low, high, 0x20), Avx.Permute2x128(low, high, 0x31));
    }
}
