using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Models.Cpu;

/// <summary>
/// nn.functional.linear for many rows (a batched decoding step's rows, a reward model's sibling candidates of
/// every row, small prefills) as a register-blocked product in outer-product form on AVX-512: y[r, o] = Σᵢ x[r, i]·w[o, i]
/// (+ bias[o]), x [rows, inF], w [outF, inF] row-major, y [rows, outF], for outputs o in [lo, hi).
/// <para>
/// WHY this form: the dot-product kernel of <see cref="CpuOps.MatMul"/> ends every output in a horizontal sum, which on
/// 64-wide rows (stories260K) is as many instructions as the multiply-adds, and it ran at ~14 GMAC/s whatever the
/// rows. Here 32 output columns of w are laid out once per call as a panel [inF, 32] (w's columns side by side, in
/// L1/L2), and each step of i broadcasts x[r, i] of 8 rows against the panel's two 16-float vectors: 16 accumulators,
/// two loads and eight broadcasts per 16 FMAs, no horizontal sums. The panel is packed per call, not cached per
/// model: the callers (the decode kernel's products, attention's keys) pass raw pointers to memory that may change,
/// so a cache keyed by address could serve stale weights; the pack costs one pass over w per call, which the rows
/// amortize (see <see cref="Takes"/>).
/// </para>
/// <para>
/// Batch invariance: every output is summed in one fixed order, s = fma(x[r, i], w[o, i], s) for i = 0, 1, …, inF − 1
/// from s = 0, then s + bias[o] (0 without a bias) — the same operations whichever block, panel, thread or row count
/// computes it (a lane of a vector or the scalar tail). So a row's result does not depend on how many rows share the
/// product or on the thread split (tested bit for bit against <see cref="Reference"/>).
/// </para>
/// </summary>
public static unsafe class CpuGemm
{
    /// <summary>Output columns per packed panel: two 16-float vectors.</summary>
    public const int PanelWidth = 32;

    /// <summary>
    /// Whether <see cref="CpuOps.MatMul"/> hands a product of <paramref name="rows"/> rows of <paramref name="inF"/>
    /// inputs and <paramref name="outF"/> outputs to this kernel. The per-call pack (a pass over w, ~1 cycle a float on
    /// this VM) is paid back from ~8 rows on 64-wide rows, ~16 on 288-wide, ~32 on 768-wide (bench gemm,
    /// docs/benchmarks.md); below, the dot-product blocks are faster. A matrix over 4 MiB (an LM head: 32000 × 288 is
    /// 37 MB) streams from memory, where the pack is an extra pass and the product is bound by the stream anyway (bench
    /// gemm: 0.76–0.94× the dot blocks at 16–32 rows), so it stays on the dot blocks. A single row always stays on the
    /// memory-bound matrix–vector loop of the batch-1 decode.
    /// </summary>
    public static bool Takes(int rows, int inF, int outF)
        => Supported && (long)outF * inF <= MaxMatrixFloats && rows >= Math.Max(2, FixedMinRows ?? (inF <= 128 ? 8 : inF <= 512 ? 16 : 32));

    /// <summary>
    /// Whether products of <paramref name="fewerRows"/> and of <paramref name="moreRows"/> rows go to the same kernel for
    /// every matrix (<see cref="Takes"/> decides alike at each width): then a row's bits are the same in either.
    /// </summary>
    public static bool SameChoice(int fewerRows, int moreRows)
    {
        foreach (int threshold in FixedMinRows is int fixedRows ? [Math.Max(2, fixedRows)] : new[] { 8, 16, 32 })
            if (fewerRows >= threshold != moreRows >= threshold) return false;
        return true;
    }

    /// <summary>The largest matrix (floats) the kernel takes: 4 MiB, what stays in this VM's 2 MiB L2 plus L3 at hand.</summary>
    public const long MaxMatrixFloats = 1 << 20;

    /// <summary>A fixed row threshold instead of the width-dependent one (PARGS_GEMM_MIN_ROWS; a huge value turns the kernel off): A/B runs of one build.</summary>
    public static int? FixedMinRows { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("PARGS_GEMM_MIN_ROWS"), out int rows) && rows >= 2 ? rows : null;

    /// <summary>Whether this CPU runs the kernel (AVX-512 with 512-bit vectors enabled in the runtime).</summary>
    public static bool Supported { get; } = Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Fma.IsSupported;

    [ThreadStatic] static float[]? panelBuffer;

    /// <summary>y[r, o] for o in [lo, hi) of every row r (see the class summary). Requires <see cref="Supported"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(float* x, int rows, int inF, float* w, float* bias, float* y, int outF, int lo, int hi)
    {
        if (!Supported) throw new PlatformNotSupportedException("CpuGemm needs AVX-512 (check CpuGemm.Supported)");
        if (rows <= 0 || hi <= lo) return;
        long needed = (long)inF * PanelWidth + PanelWidth;
        var buffer = panelBuffer;
        if (buffer is null || buffer.Length < needed) panelBuffer = buffer = GC.AllocateUninitializedArray<float>(checked((int)needed), pinned: true);
        float* panel = (float*)Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0); // pinned: the address stays valid
        float* panelBias = panel + (long)inF * PanelWidth;
        var lanes = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (int o = lo; o < hi; o += PanelWidth)
        {
            int width = Math.Min(PanelWidth, hi - o);
            Pack(w + (long)o * inF, inF, width, panel);
            for (int c = 0; c < PanelWidth; c++) panelBias[c] = c < width && bias != null ? bias[o + c] : 0f;
            var mask0 = Vector512.LessThan(lanes, Vector512.Create(width)).AsSingle();
            var mask1 = Vector512.LessThan(lanes, Vector512.Create(width - 16)).AsSingle();
            var store = new PanelStore(outF, width == PanelWidth, mask0, mask1);
            float* yo = y + o;
            int r = 0;
            for (; rows - r >= 8; r += 8) Block<Eight>(x + (long)r * inF, inF, panel, panelBias, yo + (long)r * outF, store);
            if (rows - r >= 4) { Block<Four>(x + (long)r * inF, inF, panel, panelBias, yo + (long)r * outF, store); r += 4; }
            if (rows - r >= 2) { Block<Two>(x + (long)r * inF, inF, panel, panelBias, yo + (long)r * outF, store); r += 2; }
            if (rows - r >= 1) Block<One>(x + (long)r * inF, inF, panel, panelBias, yo + (long)r * outF, store);
        }
    }

    /// <summary>
    /// The order every output is computed in, scalar: the definition the kernel matches bit for bit (tests), and
    /// what a CPU without AVX-512 could run.
    /// </summary>
    public static void Reference(float* x, int rows, int inF, float* w, float* bias, float* y, int outF, int lo, int hi)
    {
        for (int r = 0; r < rows; r++)
            for (int o = lo; o < hi; o++)
            {
                float s = 0f;
                float* xr = x + (long)r * inF, wo = w + (long)o * inF;
                for (int i = 0; i < inF; i++) s = MathF.FusedMultiplyAdd(xr[i], wo[i], s);
                y[(long)r * outF + o] = s + (bias != null ? bias[o] : 0f);
            }
    }

    /// <summary>
    /// panel[i·32 + c] = w[c, i] for the panel's <paramref name="width"/> weight rows, zero for the columns past them
    /// (their lanes are computed and never stored). Blocks of 8 weight rows × 8 columns are transposed in registers
    /// (unpack, shuffle, lane permute: 24 instructions per 64 floats), against ~2 cycles a float one at a time (bench
    /// gemm: the pack is what a product of few rows pays for).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Pack(float* w, int inF, int width, float* panel)
    {
        // (Prefetching the next 8 rows while transposing was tried, weights cycled through 8 MiB of copies: no gain.)
        int c = 0;
        for (; c + 8 <= width; c += 8)
        {
            float* w0 = w + (long)c * inF;
            int i = 0;
            for (; i + 8 <= inF; i += 8) CpuOps.Transpose8x8(w0 + i, inF, panel + (long)i * PanelWidth + c, PanelWidth);
            for (; i < inF; i++)
                for (int j = 0; j < 8; j++) panel[(long)i * PanelWidth + c + j] = w0[(long)j * inF + i];
        }
        for (; c < width; c++)
        {
            float* wc = w + (long)c * inF;
            for (int i = 0; i < inF; i++) panel[(long)i * PanelWidth + c] = wc[i];
        }
        if (c < PanelWidth)
            for (int i = 0; i < inF; i++)
                for (int z = c; z < PanelWidth; z++) panel[(long)i * PanelWidth + z] = 0f;
    }

    /// <summary>How a block writes a row's 32 (or fewer, at the last panel) outputs.</summary>
    readonly struct PanelStore(int outF, bool full, Vector512<float> mask0, Vector512<float> mask1)
    {
        public readonly int OutF = outF;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Row(float* y, Vector512<float> low, Vector512<float> high)
        {
            if (full)
            {
                low.Store(y);
                high.Store(y + 16);
                return;
            }
            // Masked stores never touch the floats past the panel's last output (the next thread's, or past the row).
            Avx512F.MaskStore(y, mask0, low);
            Avx512F.MaskStore(y + 16, mask1, high);
        }
    }

    interface IRowCount { static abstract int Count { get; } }
    struct One : IRowCount { public static int Count => 1; }
    struct Two : IRowCount { public static int Count => 2; }
    struct Four : IRowCount { public static int Count => 4; }
    struct Eight : IRowCount { public static int Count => 8; }

    /// <summary>
    /// R rows (1, 2, 4 or 8: a constant the JIT folds, one compiled body each) × one panel: 2·R accumulators held in
    /// registers over the whole of i.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Block<R>(float* x, int inF, float* panel, float* panelBias, float* y, PanelStore store) where R : struct, IRowCount
    {
        int n = R.Count;
        float* x0 = x, x1 = x + inF, x2 = x1 + inF, x3 = x2 + inF, x4 = x3 + inF, x5 = x4 + inF, x6 = x5 + inF, x7 = x6 + inF;
        var a00 = Vector512<float>.Zero; var a01 = a00; var a10 = a00; var a11 = a00; var a20 = a00; var a21 = a00; var a30 = a00; var a31 = a00;
        var a40 = a00; var a41 = a00; var a50 = a00; var a51 = a00; var a60 = a00; var a61 = a00; var a70 = a00; var a71 = a00;
        float* p = panel;
        for (int i = 0; i < inF; i++, p += PanelWidth)
        {
            var w0 = Vector512.Load(p);
            var w1 = Vector512.Load(p + 16);
            var b = Vector512.Create(x0[i]);
            a00 = Vector512.FusedMultiplyAdd(b, w0, a00); a01 = Vector512.FusedMultiplyAdd(b, w1, a01);
            if (n > 1)
            {
                b = Vector512.Create(x1[i]);
                a10 = Vector512.FusedMultiplyAdd(b, w0, a10); a11 = Vector512.FusedMultiplyAdd(b, w1, a11);
            }
            if (n > 2)
            {
                b = Vector512.Create(x2[i]);
                a20 = Vector512.FusedMultiplyAdd(b, w0, a20); a21 = Vector512.FusedMultiplyAdd(b, w1, a21);
                b = Vector512.Create(x3[i]);
                a30 = Vector512.FusedMultiplyAdd(b, w0, a30); a31 = Vector512.FusedMultiplyAdd(b, w1, a31);
            }
            if (n > 4)
            {
                b = Vector512.Create(x4[i]);
                a40 = Vector512.FusedMultiplyAdd(b, w0, a40); a41 = Vector512.FusedMultiplyAdd(b, w1, a41);
                b = Vector512.Create(x5[i]);
                a50 = Vector512.FusedMultiplyAdd(b, w0, a50); a51 = Vector512.FusedMultiplyAdd(b, w1, a51);
                b = Vector512.Create(x6[i]);
                a60 = Vector512.FusedMultiplyAdd(b, w0, a60); a61 = Vector512.FusedMultiplyAdd(b, w1, a61);
                b = Vector512.Create(x7[i]);
                a70 = Vector512.FusedMultiplyAdd(b, w0, a70); a71 = Vector512.FusedMultiplyAdd(b, w1, a71);
            }
        }
        var bias0 = Vector512.Load(panelBias);
        var bias1 = Vector512.Load(panelBias + 16);
        long outF = store.OutF;
        store.Row(y, a00 + bias0, a01 + bias1);
        if (n > 1) store.Row(y + outF, a10 + bias0, a11 + bias1);
        if (n > 2)
        {
            store.Row(y + 2 * outF, a20 + bias0, a21 + bias1);
            store.Row(y + 3 * outF, a30 + bias0, a31 + bias1);
        }
        if (n > 4)
        {
            store.Row(y + 4 * outF, a40 + bias0, a41 + bias1);
            store.Row(y + 5 * outF, a50 + bias0, a51 + bias1);
            store.Row(y + 6 * outF, a60 + bias0, a61 + bias1);
            store.Row(y + 7 * outF, a70 + bias0, a71 + bias1);
        }
    }
}
