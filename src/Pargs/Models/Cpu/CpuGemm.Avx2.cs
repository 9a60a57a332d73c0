using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Models.Cpu;

// CpuGemm on AVX2 + FMA (256-bit vectors, 16 ymm registers: AMD Zen 2/3, Intel before AVX-512), over the same [inF, 32]
// panels as the AVX-512 blocks (so KeptPanels keeps one layout) and the same fma chain per output, so the same bits.
public static unsafe partial class CpuGemm
{
    /// <summary>
    /// The fewest rows <see cref="Takes"/> hands to the AVX2 kernel at <paramref name="inF"/> inputs, its per-call pack
    /// included: 24 to 256 inputs, 32 beyond. Measured on the AMD EPYC (Zen 3) 2-vCPU machine (bench gemm, two runs, load
    /// 13–23, docs/benchmarks.md): Zen 3's dot-product blocks run at 25–38 GMAC/s from 8 rows (the Intel VM's at ~14), so
    /// the pack pays back later than on AVX-512 — on 64 × 64, 172 × 64 and 64 × 172 the kernel draws level at 16–32 rows
    /// (0.81–1.08× at 16–24, 0.95–1.14× at 32), on the 15M shape's 288- and 768-wide matrices at 64–96 rows (0.54–0.86×
    /// at 24–32, 0.79–0.98× at 48, 0.88–1.19× at 64, 0.92–1.22× at 96). Kept panels pay no pack: see <see cref="Avx2KeptMinRows"/>.
    /// WHY not 64 beyond 256 inputs, where the per-call kernel would first draw level: <see cref="SameChoice"/> is one set of
    /// thresholds for every width, and a sibling forward splits by rows from 32 candidates a half; a threshold above 32
    /// would stop the halves of 64–127 candidates (8 rows × 10 of a small model) from splitting. So 32: at 32–63 rows
    /// the 15M shape's unmarked products run ~0.6–1.2× the dot blocks, mostly below 1 (a miss; a server's kept panels pay no pack and win).
    /// </summary>
    static int Avx2MinRows(int inF) => inF <= 256 ? 24 : 32;

    /// <summary>Every value of <see cref="Avx2MinRows"/> (what <see cref="SameChoice"/> checks).</summary>
    static readonly int[] Avx2MinRowsChoices = [24, 32];

    /// <summary>
    /// Below this many rows (and against a matrix past L1) the AVX2 kernel packs x's rows, not w (<see cref="PacksRows"/>):
    /// at 32–63 rows on the 15M shape's matrices the row panels ran 0.75–1.22× the dot blocks against the weight panels'
    /// 0.75–1.10× (bench gemm with PARGS_GEMM_PACK=rows and =weights, load 23–27: better in 11 of 15 cells).
    /// </summary>
    const int Avx2RowPanelMaxRows = 64;

    /// <summary>
    /// <see cref="KeptMinRows"/> on AVX2: over kept panels the kernel beat the dot-product blocks at 10–12 rows on every
    /// shape of bench gemm (1.01–1.51×), at 8 rows on some and not others (0.83–1.24×): a 16-stream step's 11–16
    /// LM rows and the reward model's 110–160 candidates take it.
    /// </summary>
    const int Avx2KeptMinRows = 10;

    /// <summary>Rows of the largest AVX2 block: 6 rows × 16 columns = 12 accumulators + 2 panel vectors + 1 broadcast of 16 ymm registers.</summary>
    const int Avx2BlockRows = 6;

    /// <summary>
    /// The rows of x against one [inF, 32] panel on AVX2, for the panel's outputs [first, end) (0 ≤ first &lt; end ≤ 32),
    /// written at y (the panel's output 0 of row 0). WHY half a panel at a time: a whole panel is four 8-float vectors per
    /// row, and 16 ymm registers hold 12 accumulators for at most 3 rows of it (3 broadcasts per 4 loads per 12 FMAs);
    /// a half (two vectors) holds 6 rows (6 broadcasts per 2 loads per 12 FMAs, the BLIS Haswell shape), and its 16 columns
    /// of [inF, 32] are one 64-byte line per i — half the panel's lines, in L1 while every block of rows passes over them.
    /// A half with no output in [first, end) is skipped (a narrow last panel, a thread's range cut inside a panel).
    /// <paramref name="next"/>: the next kept panel, pulled toward L2 over the blocks (see MultiplyByKeptPanels).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PanelAvx2(float* x, int rows, int inF, float* panel, float* panelBias, float* y, int outF, int first, int end, byte* next, int nextLines)
    {
        var lanes = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        int halves = (first < 16 ? 1 : 0) + (end > 16 ? 1 : 0);
        int blocks = halves * (rows / Avx2BlockRows + (rows % Avx2BlockRows is 5 ? 2 : rows % Avx2BlockRows > 0 ? 1 : 0));
        int slice = blocks == 0 ? 0 : Math.Min(inF, (nextLines + blocks - 1) / blocks), prefetched = 0;
        for (int h = first < 16 ? 0 : 1; h < 2 && 16 * h < end; h++)
        {
            int lo = first - 16 * h, hi = end - 16 * h; // this half's stored columns, in its own lanes 0..15
            var mask0 = (Vector256.GreaterThanOrEqual(lanes, Vector256.Create(lo)) & Vector256.LessThan(lanes, Vector256.Create(hi))).AsSingle();
            var mask1 = (Vector256.GreaterThanOrEqual(lanes, Vector256.Create(lo - 8)) & Vector256.LessThan(lanes, Vector256.Create(hi - 8))).AsSingle();
            var store = new HalfPanelStore(outF, lo <= 0 && hi >= 16, mask0, mask1);
            float* half = panel + 16 * h, halfBias = panelBias + 16 * h, yh = y + 16 * h;
            int r = 0;
            for (; rows - r >= 6; r += 6, prefetched += slice) BlockAvx2<Six>(x + (long)r * inF, inF, half, halfBias, yh + (long)r * outF, store, next, Lines(prefetched));
            // 5 = 3 + 2; 4, 3, 2, 1 in one block.
            if (rows - r == 5) { BlockAvx2<Three>(x + (long)r * inF, inF, half, halfBias, yh + (long)r * outF, store, next, Lines(prefetched)); r += 3; prefetched += slice; }
            if (rows - r == 4) BlockAvx2<Four>(x + (long)r * inF, inF, half, halfBias, yh + (long)r * outF, store, next, Lines(prefetched));
            else if (rows - r == 3) BlockAvx2<Three>(x + (long)r * inF, inF, half, halfBias, yh + (long)r * outF, store, next, Lines(prefetched));
            else if (rows - r == 2) BlockAvx2<Two>(x + (long)r * inF, inF, half, halfBias, yh + (long)r * outF, store, next, Lines(prefetched));
            else if (rows - r == 1) BlockAvx2<One>(x + (long)r * inF, inF, half, halfBias, yh + (long)r * outF, store, next, Lines(prefetched));
            if (rows - r > 0) prefetched += slice;
        }
        // Lines [first, first + count) of the next panel for one block: what is left of the slice.
        (int First, int Count) Lines(int firstLine) => (firstLine, Math.Max(0, Math.Min(slice, nextLines - firstLine)));
    }

    /// <summary>How an AVX2 block writes a row's 16 (or fewer) outputs of one half panel.</summary>
    readonly struct HalfPanelStore(int outF, bool full, Vector256<float> mask0, Vector256<float> mask1)
    {
        public readonly int OutF = outF;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Row(float* y, Vector256<float> low, Vector256<float> high)
        {
            if (full)
            {
                low.Store(y);
                high.Store(y + 8);
                return;
            }
            // vmaskmovps never touches the floats outside the range (the next thread's, or past the row).
            Avx.MaskStore(y, mask0, low);
            Avx.MaskStore(y + 8, mask1, high);
        }
    }

    /// <summary>
    /// R rows (1, 2, 3, 4 or 6: a constant the JIT folds, one compiled body each) × one half panel (16 columns, two 8-float
    /// vectors, rows of the panel <see cref="PanelWidth"/> floats apart): 2·R accumulators held in registers over the whole
    /// of i, each output's s = fma(x[r, i], w[o, i], s) from i = 0 as in <see cref="Reference"/>, then s + bias.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void BlockAvx2<R>(float* x, int inF, float* half, float* halfBias, float* y, HalfPanelStore store, byte* prefetch, (int First, int Count) lines)
        where R : struct, IRowCount
    {
        int n = R.Count;
        float* x0 = x, x1 = x + inF, x2 = x1 + inF, x3 = x2 + inF, x4 = x3 + inF, x5 = x4 + inF;
        var a00 = Vector256<float>.Zero; var a01 = a00; var a10 = a00; var a11 = a00; var a20 = a00; var a21 = a00;
        var a30 = a00; var a31 = a00; var a40 = a00; var a41 = a00; var a50 = a00; var a51 = a00;
        float* p = half;
        // The prefetches (kept panels: lines of the next panel) go between runs of `stride` iterations, outside the inner
        // loop, whose registers are all taken by the accumulators, the panel's two vectors and the broadcast.
        int stride = lines.Count > 0 ? Math.Max(1, inF / lines.Count) : inF, line = lines.First, lastLine = lines.First + lines.Count;
        for (int i = 0; i < inF;)
        {
            int runEnd = Math.Min(inF, i + stride);
            for (; i < runEnd; i++, p += PanelWidth)
            {
                var w0 = Vector256.Load(p);
                var w1 = Vector256.Load(p + 8);
                var b = Vector256.Create(x0[i]);
                a00 = Vector256.FusedMultiplyAdd(b, w0, a00); a01 = Vector256.FusedMultiplyAdd(b, w1, a01);
                if (n > 1)
                {
                    b = Vector256.Create(x1[i]);
                    a10 = Vector256.FusedMultiplyAdd(b, w0, a10); a11 = Vector256.FusedMultiplyAdd(b, w1, a11);
                }
                if (n > 2)
                {
                    b = Vector256.Create(x2[i]);
                    a20 = Vector256.FusedMultiplyAdd(b, w0, a20); a21 = Vector256.FusedMultiplyAdd(b, w1, a21);
                }
                if (n > 3)
                {
                    b = Vector256.Create(x3[i]);
                    a30 = Vector256.FusedMultiplyAdd(b, w0, a30); a31 = Vector256.FusedMultiplyAdd(b, w1, a31);
                }
                if (n > 4)
                {
                    b = Vector256.Create(x4[i]);
                    a40 = Vector256.FusedMultiplyAdd(b, w0, a40); a41 = Vector256.FusedMultiplyAdd(b, w1, a41);
                    b = Vector256.Create(x5[i]);
                    a50 = Vector256.FusedMultiplyAdd(b, w0, a50); a51 = Vector256.FusedMultiplyAdd(b, w1, a51);
                }
            }
            if (line < lastLine) Sse.Prefetch1(prefetch + 64L * line++);
        }
        var bias0 = Vector256.Load(halfBias);
        var bias1 = Vector256.Load(halfBias + 8);
        long outF = store.OutF;
        store.Row(y, a00 + bias0, a01 + bias1);
        if (n > 1) store.Row(y + outF, a10 + bias0, a11 + bias1);
        if (n > 2) store.Row(y + 2 * outF, a20 + bias0, a21 + bias1);
        if (n > 3) store.Row(y + 3 * outF, a30 + bias0, a31 + bias1);
        if (n > 4)
        {
            store.Row(y + 4 * outF, a40 + bias0, a41 + bias1);
            store.Row(y + 5 * outF, a50 + bias0, a51 + bias1);
        }
    }

    /// <summary>Outputs per AVX2 row-panel block (<see cref="RowPanelBlockAvx2"/>): 6 outputs × 16 rows = 12 accumulators, as the weights-packed block.</summary>
    const int Avx2RowPanelOutputs = 6;

    /// <summary>
    /// <see cref="RowPanelBlock{P}"/> on AVX2: outputs o..o+5 (those below <paramref name="hi"/>; the others repeat output
    /// hi − 1's weights, never stored) of one row panel (16 rows: two 8-float vectors) into <paramref name="block"/>
    /// [8 outputs][32 rows], bias added; each output the same fma chain over i from 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RowPanelBlockAvx2(float* panel, int inF, float* w, int o, int hi, float* bias, float* block)
    {
        float* w0 = w + (long)o * inF, w1 = w + (long)Math.Min(o + 1, hi - 1) * inF, w2 = w + (long)Math.Min(o + 2, hi - 1) * inF,
               w3 = w + (long)Math.Min(o + 3, hi - 1) * inF, w4 = w + (long)Math.Min(o + 4, hi - 1) * inF, w5 = w + (long)Math.Min(o + 5, hi - 1) * inF;
        var a00 = Vector256<float>.Zero; var a01 = a00; var a10 = a00; var a11 = a00; var a20 = a00; var a21 = a00;
        var a30 = a00; var a31 = a00; var a40 = a00; var a41 = a00; var a50 = a00; var a51 = a00;
        float* p = panel;
        for (int i = 0; i < inF; i++, p += RowPanelHeight)
        {
            var x0 = Vector256.Load(p);
            var x1 = Vector256.Load(p + 8);
            var b = Vector256.Create(w0[i]);
            a00 = Vector256.FusedMultiplyAdd(x0, b, a00); a01 = Vector256.FusedMultiplyAdd(x1, b, a01);
            b = Vector256.Create(w1[i]);
            a10 = Vector256.FusedMultiplyAdd(x0, b, a10); a11 = Vector256.FusedMultiplyAdd(x1, b, a11);
            b = Vector256.Create(w2[i]);
            a20 = Vector256.FusedMultiplyAdd(x0, b, a20); a21 = Vector256.FusedMultiplyAdd(x1, b, a21);
            b = Vector256.Create(w3[i]);
            a30 = Vector256.FusedMultiplyAdd(x0, b, a30); a31 = Vector256.FusedMultiplyAdd(x1, b, a31);
            b = Vector256.Create(w4[i]);
            a40 = Vector256.FusedMultiplyAdd(x0, b, a40); a41 = Vector256.FusedMultiplyAdd(x1, b, a41);
            b = Vector256.Create(w5[i]);
            a50 = Vector256.FusedMultiplyAdd(x0, b, a50); a51 = Vector256.FusedMultiplyAdd(x1, b, a51);
        }
        // + bias (0 without one: the same s + 0 as Reference)
        Vector256<float> Bias(int c) => Vector256.Create(bias != null ? bias[Math.Min(o + c, hi - 1)] : 0f);
        const int row = 2 * RowPanelHeight;
        (a00 + Bias(0)).Store(block); (a01 + Bias(0)).Store(block + 8);
        (a10 + Bias(1)).Store(block + row); (a11 + Bias(1)).Store(block + row + 8);
        (a20 + Bias(2)).Store(block + 2 * row); (a21 + Bias(2)).Store(block + 2 * row + 8);
        (a30 + Bias(3)).Store(block + 3 * row); (a31 + Bias(3)).Store(block + 3 * row + 8);
        (a40 + Bias(4)).Store(block + 4 * row); (a41 + Bias(4)).Store(block + 4 * row + 8);
        (a50 + Bias(5)).Store(block + 5 * row); (a51 + Bias(5)).Store(block + 5 * row + 8);
    }

    struct Three : IRowCount { public static int Count => 3; }
    struct Six : IRowCount { public static int Count => 6; }
}
