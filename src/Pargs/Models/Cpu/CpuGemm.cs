using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Models.Cpu;

/// <summary>
/// nn.functional.linear for many rows (a batched decoding step's rows, a reward model's sibling candidates of
/// every row, small prefills) as a register-blocked product in outer-product form on AVX-512 or AVX2 + FMA: y[r, o] = Σᵢ x[r, i]·w[o, i]
/// (+ bias[o]), x [rows, inF], w [outF, inF] row-major, y [rows, outF], for outputs o in [lo, hi).
/// <para>
/// WHY this form: the dot-product kernel of <see cref="CpuOps.MatMul"/> ends every output in a horizontal sum, which on
/// 64-wide rows (stories260K) is as many instructions as the multiply-adds, and it ran at ~14 GMAC/s whatever the
/// rows. Here 32 output columns of w are laid out once per call as a panel [inF, 32] (w's columns side by side, in
/// L1/L2), and each step of i broadcasts x[r, i] of 8 rows against the panel's two 16-float vectors: 16 accumulators,
/// two loads and eight broadcasts per 16 FMAs, no horizontal sums. The panel is packed per call, not cached per
/// model: the callers (the decode kernel's products, attention's keys) pass raw pointers to memory that may change,
/// so a cache keyed by address could serve stale weights; the pack costs one pass over w per call, which the rows
/// amortize (see <see cref="Takes"/>). Below 32 rows against a matrix past L1, x's rows are packed instead
/// (<see cref="MultiplyByRowPanels"/>: the same bits).
/// </para>
/// <para>
/// AVX2 + FMA (AMD Zen, the CI machine; CpuGemm.Avx2.cs) multiplies the same panels half a panel at a time, 6 rows × 16
/// columns a block (16 ymm registers), and a 6-output block over x's row panels: the same operations per output, so the
/// same bits as AVX-512 and <see cref="Reference"/>; its row thresholds are its own (<see cref="MinRows"/>).
/// </para>
/// <para>
/// Batch invariance: every output is summed in one fixed order, s = fma(x[r, i], w[o, i], s) for i = 0, 1, …, inF − 1
/// from s = 0, then s + bias[o] (0 without a bias) — the same operations whichever block, panel, thread or row count
/// computes it (a lane of a vector or the scalar tail). So a row's result does not depend on how many rows share the
/// product or on the thread split (tested bit for bit against <see cref="Reference"/>).
/// </para>
/// </summary>
public static unsafe partial class CpuGemm
{
    /// <summary>Output columns per packed panel: two 16-float vectors (AVX-512), or two halves of two 8-float vectors (AVX2).</summary>
    public const int PanelWidth = 32;

    /// <summary>
    /// Whether <see cref="CpuOps.MatMul"/> hands a product of <paramref name="rows"/> rows of <paramref name="inF"/>
    /// inputs and <paramref name="outF"/> outputs to this kernel. The per-call pack (a pass over w, ~1 cycle a float on
    /// the Intel AVX-512 VM) is paid back there from ~8 rows on 64-wide rows, ~16 on 288-wide, ~32 on 768-wide (bench gemm,
    /// docs/benchmarks.md); below, the dot-product blocks are faster. On AVX2 the thresholds are <see cref="Avx2MinRows"/>'s,
    /// measured on an AMD Zen 3 (<see cref="MinRows"/>). A matrix over 4 MiB (an LM head: 32000 × 288 is
    /// 37 MB) streams from memory, where the pack is an extra pass and the product is bound by the stream anyway (bench
    /// gemm: 0.76–0.94× the dot blocks at 16–32 rows), so it stays on the dot blocks. A single row always stays on the
    /// memory-bound matrix–vector loop of the batch-1 decode.
    /// </summary>
    public static bool Takes(int rows, int inF, int outF)
        => Supported && (long)outF * inF <= MaxMatrixFloats && rows >= Math.Max(2, FixedMinRows ?? MinRows(Isa, inF));

    /// <summary>
    /// The fewest rows <see cref="Takes"/> hands to <paramref name="isa"/>'s kernel at <paramref name="inF"/> inputs (one of
    /// <see cref="MinRowsChoices"/>). AVX-512 (the Intel VM of sessions 9–12): 8 rows to 128 inputs, 16 to 512, 32 beyond.
    /// AVX2: see <see cref="Avx2MinRows"/>.
    /// </summary>
    internal static int MinRows(GemmIsa isa, int inF)
        => isa == GemmIsa.Avx2 ? Avx2MinRows(inF) : inF <= 128 ? 8 : inF <= 512 ? 16 : 32;

    /// <summary>Every value <see cref="MinRows"/> takes for <paramref name="isa"/>, whatever the width: the thresholds <see cref="SameChoice"/> checks.</summary>
    internal static int[] MinRowsChoices(GemmIsa isa) => isa == GemmIsa.Avx2 ? Avx2MinRowsChoices : Avx512MinRowsChoices;

    static readonly int[] Avx512MinRowsChoices = [8, 16, 32];

    /// <summary>
    /// Whether products of <paramref name="fewerRows"/> and of <paramref name="moreRows"/> rows go to the same kernel for
    /// every matrix (<see cref="Takes"/> decides alike at each width, and <see cref="TakesKept"/> for a model whose panels are
    /// kept): then a row's bits are the same in either.
    /// </summary>
    public static bool SameChoice(int fewerRows, int moreRows)
    {
        if (FixedMinRows is int fixedRows) return Alike(Math.Max(2, fixedRows));
        foreach (int threshold in MinRowsChoices(Isa))
            if (!Alike(threshold)) return false;
        return Alike(KeptMinRows);
        bool Alike(int threshold) => fewerRows >= threshold == moreRows >= threshold;
    }

    /// <summary>The largest matrix (floats) the kernel takes: 4 MiB, what stays in this VM's 2 MiB L2 plus L3 at hand.</summary>
    public const long MaxMatrixFloats = 1 << 20;

    /// <summary>A fixed row threshold instead of the width-dependent one (PARGS_GEMM_MIN_ROWS; a huge value turns the kernel off): A/B runs of one build.</summary>
    public static int? FixedMinRows { get; set; } =
        TuningVariable.Read("PARGS_GEMM_MIN_ROWS", fallback: -1, min: 2, max: int.MaxValue, "the width-dependent thresholds") is var rows and >= 2 ? (int)rows : null;

    /// <summary>Whether this CPU runs the kernel: AVX-512 with 512-bit vectors enabled in the runtime, or AVX2 + FMA (unless PARGS_GEMM_AVX2=0).</summary>
    public static bool Supported => Isa != GemmIsa.None;

    /// <summary>
    /// The instruction set the kernel runs on: AVX-512 where the runtime enables 512-bit vectors, else AVX2 + FMA (AMD Zen,
    /// the CI machine), else none (CpuOps.MatMul keeps its dot-product blocks). Both give every output the same bits (one fma
    /// chain whatever the vector width). PARGS_GEMM_AVX2=0 turns the AVX2 kernel off (A/B runs of one build: the products
    /// go back to the dot-product blocks); a test's <see cref="UseIsa"/> scope picks another supported one on its thread.
    /// </summary>
    public static GemmIsa Isa => isaOverride ?? DefaultIsa;

    /// <summary>What this CPU and PARGS_GEMM_AVX2 give <see cref="Isa"/> (no override).</summary>
    public static GemmIsa DefaultIsa { get; } =
        IsaRuns(GemmIsa.Avx512) ? GemmIsa.Avx512
        : IsaRuns(GemmIsa.Avx2) && TuningVariable.Read("PARGS_GEMM_AVX2", fallback: 1, min: 0, max: 1) == 1 ? GemmIsa.Avx2
        : GemmIsa.None;

    /// <summary>Whether this CPU (and the runtime's vector settings) runs <paramref name="isa"/>'s kernel.</summary>
    public static bool IsaRuns(GemmIsa isa) => isa switch
    {
        GemmIsa.Avx512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Fma.IsSupported,
        GemmIsa.Avx2 => Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };

    [ThreadStatic] static GemmIsa? isaOverride;

    /// <summary>
    /// Until the returned scope is disposed, this thread's products run on <paramref name="isa"/> (tests: an AVX-512 machine
    /// checks its AVX2 kernel too; GemmIsa.None switches the kernel off). Refuses an instruction set this CPU lacks.
    /// </summary>
    internal static IsaScope UseIsa(GemmIsa isa)
    {
        if (!IsaRuns(isa)) throw new PlatformNotSupportedException($"CpuGemm: this CPU does not run the {isa} kernel");
        var scope = new IsaScope(isaOverride);
        isaOverride = isa;
        return scope;
    }

    /// <summary>Puts back the instruction set a <see cref="UseIsa"/> scope replaced (on the thread that opened it).</summary>
    internal readonly struct IsaScope(GemmIsa? previous) : IDisposable
    {
        public void Dispose() => isaOverride = previous;
    }

    [ThreadStatic] static float[]? panelBuffer;
    [ThreadStatic] static float[]? rowPanelBuffer;

    /// <summary>
    /// The default choice of <see cref="PackRows"/>: x's rows when they are fewer than 32 (one or two panels) and than the
    /// call's outputs, and the weights are past L1 (over 64 Ki floats). Measured (bench gemm, alternated, load 9–11): on
    /// the 15M shape's 288 × 288, 768 × 288 and 288 × 768 at 16–31 rows 18–26 → 19–53 GMAC/s (faster in 17 of 18
    /// comparisons), where the weights' pack is most of the call; from 40 rows on no gain within the noise (kept on the weights); on 64 × 64 at 16 rows slower
    /// (a single panel waits on a broadcast of w per FMA, and a matrix in L1 packs cheaply).
    /// </summary>
    static bool PacksRows(int rows, int inF, int outputs, GemmIsa isa)
        => rows < (isa == GemmIsa.Avx2 ? Avx2RowPanelMaxRows : 2 * RowPanelHeight) && rows < outputs && (long)inF * outputs > 1 << 16;

    /// <summary>Rows per packed row panel (<see cref="MultiplyByRowPanels"/>): one 16-float vector.</summary>
    const int RowPanelHeight = 16;

    /// <summary>
    /// Which operand a call packs: null (the default) the smaller — x's rows when there are fewer rows than outputs in the
    /// call, else w's columns; true always x, false always w (PARGS_GEMM_PACK=rows|weights: A/B runs of one build, tests).
    /// Either gives every output the same bits (the one summation order).
    /// </summary>
    public static bool? PackRows { get; set; } = Environment.GetEnvironmentVariable("PARGS_GEMM_PACK") switch
    {
        "rows" => true, "weights" => false, _ => null,
    };

    /// <summary>
    /// y[r, o] for o in [lo, hi) of every row r (see the class summary). Requires <see cref="Supported"/>. With
    /// <paramref name="kept"/> (a model held for inference only), w's panels are packed once and kept there instead of at
    /// every call: the same panels, the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(float* x, int rows, int inF, float* w, float* bias, float* y, int outF, int lo, int hi, KeptPanels? kept = null)
    {
        var isa = Isa;
        if (isa == GemmIsa.None) throw new PlatformNotSupportedException("CpuGemm needs AVX-512 or AVX2 + FMA (check CpuGemm.Supported)");
        if (rows <= 0 || hi <= lo) return;
        // Kept panels cost no pack, so they beat packing the rows too (PackRows = true still forces the row panels).
        if (kept is not null && KeptPanels.Enabled && PackRows != true)
        {
            MultiplyByKeptPanels(x, rows, inF, kept.For(w, inF, outF), bias, y, outF, lo, hi, isa);
            return;
        }
        if (PackRows ?? PacksRows(rows, inF, hi - lo, isa))
        {
            MultiplyByRowPanels(x, rows, inF, w, bias, y, outF, lo, hi, isa);
            return;
        }
        long needed = (long)inF * PanelWidth + PanelWidth + AlignFloats;
        var buffer = panelBuffer;
        if (buffer is null || buffer.Length < needed) panelBuffer = buffer = GC.AllocateUninitializedArray<float>(checked((int)needed), pinned: true);
        float* panel = CacheLineAligned(buffer); // pinned: the address stays valid
        float* panelBias = panel + (long)inF * PanelWidth;
        if (isa == GemmIsa.Avx2)
        {
            for (int o = lo; o < hi; o += PanelWidth)
            {
                int width = Math.Min(PanelWidth, hi - o);
                Pack(w + (long)o * inF, inF, width, panel);
                for (int c = 0; c < PanelWidth; c++) panelBias[c] = c < width && bias != null ? bias[o + c] : 0f;
                PanelAvx2(x, rows, inF, panel, panelBias, y + o, outF, 0, width, null, 0);
            }
            return;
        }
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
    /// Whether <see cref="CpuOps.MatMul"/> hands a product whose weights' panels are kept (<see cref="KeptPanels"/>) to this
    /// kernel: from <see cref="KeptMinRows"/> rows at any width, where <see cref="Takes"/> waits for 16 rows at 288–512
    /// inputs and 32 beyond to pay back the per-call pack. With no pack to pay, the outer product beat the dot-product
    /// blocks from 8 rows on the 15M shape's matrices (bench gemm, load 7–9: 288 × 288 at 8 rows 40.8 against 34.2 GMAC/s,
    /// at 12 rows 47.8 against 35.8; 288 × 768 at 8 rows 42.0 against 26.6, at 12 rows 46.6 against 28.6): a 16-stream
    /// step's LM rows (11–16) take it. PARGS_GEMM_MIN_ROWS (<see cref="FixedMinRows"/>) overrides both thresholds.
    /// </summary>
    public static bool TakesKept(int rows, int inF, int outF)
        => Supported && KeptPanels.Enabled && (long)outF * inF <= MaxMatrixFloats && rows >= Math.Max(2, FixedMinRows ?? KeptMinRows);

    /// <summary>
    /// Whether an LM head whose panels its model keeps (<see cref="KeptPanels.KeepsHead"/>) runs here at <paramref name="rows"/>
    /// rows: from the same row count as <see cref="TakesKept"/>, at any size (a head over 4 MiB streams from memory either way,
    /// and its kept panels are one sequential stream prefetched a panel ahead, where the dot blocks read four weight rows at a
    /// time). So a marked LM switches kernels at one row count, its layers and its head alike.
    /// </summary>
    public static bool TakesKeptHead(int rows)
        => Supported && KeptPanels.Enabled && rows >= Math.Max(2, FixedMinRows ?? KeptMinRows);

    /// <summary>
    /// See <see cref="TakesKept"/>: 8 rows on AVX-512, 10 on AVX2 (<see cref="Avx2KeptMinRows"/>), or PARGS_KEPT_MIN_ROWS
    /// (A/B runs of one build) for either.
    /// </summary>
    public static int KeptMinRows
    {
        get => keptMinRows ?? (Isa == GemmIsa.Avx2 ? Avx2KeptMinRows : 8);
        set => keptMinRows = value;
    }
    static int? keptMinRows = TuningVariable.Read("PARGS_KEPT_MIN_ROWS", fallback: -1, min: 2, max: int.MaxValue, "the instruction set's default") is var kept and >= 2 ? (int)kept : null;

    /// <summary>
    /// <see cref="Multiply"/> over panels packed beforehand (<see cref="PackPanels"/>: panel p holds outputs 32p … 32p + 31):
    /// the panels that cover [lo, hi), each stored only at its outputs inside the range (a split's ranges need not start at
    /// a panel's first output).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MultiplyByKeptPanels(float* x, int rows, int inF, float* panels, float* bias, float* y, int outF, int lo, int hi, GemmIsa isa)
    {
        float* panelBias = stackalloc float[PanelWidth];
        if (isa == GemmIsa.Avx2)
        {
            for (int p = lo / PanelWidth; p * PanelWidth < hi; p++)
            {
                int o = p * PanelWidth, first = Math.Max(lo - o, 0), end = Math.Min(hi - o, PanelWidth);
                float* panel = panels + (long)p * inF * PanelWidth;
                for (int c = 0; c < PanelWidth; c++) panelBias[c] = c >= first && c < end && bias != null ? bias[o + c] : 0f;
                // The next panel toward L2 while this one is multiplied, as below.
                byte* next = (p + 1) * PanelWidth < hi && Sse.IsSupported ? (byte*)(panel + (long)inF * PanelWidth) : null;
                PanelAvx2(x, rows, inF, panel, panelBias, y + o, outF, first, end, next, next == null ? 0 : inF * PanelWidth * sizeof(float) / 64);
            }
            return;
        }
        var lanes = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (int p = lo / PanelWidth; p * PanelWidth < hi; p++)
        {
            int o = p * PanelWidth, first = Math.Max(lo - o, 0), end = Math.Min(hi - o, PanelWidth);
            float* panel = panels + (long)p * inF * PanelWidth;
            for (int c = 0; c < PanelWidth; c++) panelBias[c] = c >= first && c < end && bias != null ? bias[o + c] : 0f;
            var mask0 = (Vector512.GreaterThanOrEqual(lanes, Vector512.Create(first)) & Vector512.LessThan(lanes, Vector512.Create(end))).AsSingle();
            var mask1 = (Vector512.GreaterThanOrEqual(lanes, Vector512.Create(first - 16)) & Vector512.LessThan(lanes, Vector512.Create(end - 16))).AsSingle();
            var store = new PanelStore(outF, first == 0 && end == PanelWidth, mask0, mask1);
            float* yo = y + o;
            // The next panel is pulled toward L2 while this one is multiplied, a slice of its lines per block of rows spread
            // over the block's iterations: kept panels come from L3 or memory (a per-call pack reads w there instead, as eight
            // streams), the blocks' own loads are a single stream the core runs ahead of only so far, and a burst of
            // prefetches before each block stalled on the line fill buffers (a trace put 18 % of CpuGemm's time there).
            byte* next = (p + 1) * PanelWidth < hi && Sse.IsSupported ? (byte*)(panel + (long)inF * PanelWidth) : null;
            int nextLines = next == null ? 0 : inF * PanelWidth * sizeof(float) / 64;
            int blocks = rows / 8 + (rows % 8 >= 4 ? 1 : 0) + (rows % 4 >= 2 ? 1 : 0) + (rows % 2);
            int slice = Math.Min(inF, (nextLines + blocks - 1) / blocks), prefetched = 0;
            int r = 0;
            for (; rows - r >= 8; r += 8, prefetched += slice) Block<Eight>(x + (long)r * inF, inF, panel, panelBias, yo + (long)r * outF, store, next, Lines(prefetched));
            if (rows - r >= 4) { Block<Four>(x + (long)r * inF, inF, panel, panelBias, yo + (long)r * outF, store, next, Lines(prefetched)); r += 4; prefetched += slice; }
            if (rows - r >= 2) { Block<Two>(x + (long)r * inF, inF, panel, panelBias, yo + (long)r * outF, store, next, Lines(prefetched)); r += 2; prefetched += slice; }
            if (rows - r >= 1) Block<One>(x + (long)r * inF, inF, panel, panelBias, yo + (long)r * outF, store, next, Lines(prefetched));
            // Lines [first, first + count) of the next panel for one block: what is left of the slice.
            (int First, int Count) Lines(int first) => (first, Math.Max(0, Math.Min(slice, nextLines - first)));
        }
    }

    /// <summary>Floats a pinned buffer is allocated beyond its use so that its start can move to a cache line (<see cref="CacheLineAligned"/>).</summary>
    public const int AlignFloats = 16;

    /// <summary>
    /// The first 64-byte-aligned float of a pinned array (allocated <see cref="AlignFloats"/> longer): the panels' 64-byte loads
    /// then each read one cache line, where the pinned heap's 8-byte alignment split most of them over two.
    /// </summary>
    internal static float* CacheLineAligned(float[] pinned)
    {
        nint start = Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0);
        return (float*)((start + 63) & ~(nint)63);
    }

    /// <summary>All of w's panels [inF, 32], one after another (⌈outF / 32⌉ of them, the last zero-padded): what <see cref="Multiply"/> packs per call.</summary>
    internal static void PackPanels(float* w, int inF, int outF, float* panels)
    {
        for (int o = 0; o < outF; o += PanelWidth)
            Pack(w + (long)o * inF, inF, Math.Min(PanelWidth, outF - o), panels + (long)(o / PanelWidth) * inF * PanelWidth);
    }

    /// <summary>
    /// <see cref="Multiply"/> with x packed instead of w: x's rows, 16 at a time, as panels [inF, 16] (rows side by side),
    /// and each step of i broadcasts w[o, i] of 8 outputs against two panels' vectors: 16 accumulators, two loads and eight
    /// broadcasts per 16 FMAs, as in the weights-packed form with the roles swapped. WHY: the pack is a transposing pass over
    /// its operand, paid per call; at 16–31 rows against the 15M shape's matrices (a 16-stream LM step, a 16-token join's
    /// prefill, two or three rows' sibling candidates) packing the weights was most of the product, and the rows are a tenth
    /// of the floats (see <see cref="PacksRows"/>). Each output's sum is the same fma chain over i from 0 (x·w and w·x are the
    /// same product), so the bits equal <see cref="Reference"/>'s like the weights-packed form's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MultiplyByRowPanels(float* x, int rows, int inF, float* w, float* bias, float* y, int outF, int lo, int hi, GemmIsa isa)
    {
        int panels = (rows + RowPanelHeight - 1) / RowPanelHeight;
        long needed = (long)panels * inF * RowPanelHeight;
        var buffer = rowPanelBuffer;
        if (buffer is null || buffer.Length < needed) rowPanelBuffer = buffer = GC.AllocateUninitializedArray<float>(checked((int)Math.Max(needed, needed * 3 / 2)), pinned: true);
        float* panel = (float*)Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0); // pinned: the address stays valid
        for (int p = 0; p < panels; p++)
            PackRowPanel(x + (long)p * RowPanelHeight * inF, Math.Min(RowPanelHeight, rows - p * RowPanelHeight), inF, panel + (long)p * inF * RowPanelHeight);
        float* block = stackalloc float[8 * 2 * RowPanelHeight]; // [8 outputs][32 rows]
        if (isa == GemmIsa.Avx2)
        {
            // AVX2: 6 outputs × one panel's 16 rows a block (12 ymm accumulators), stored one float at a time (a 6-wide block
            // has no 8 × 8 transpose; the stores are 1/inF of the FMAs).
            for (int o = lo; o < hi; o += Avx2RowPanelOutputs)
            {
                int width = Math.Min(Avx2RowPanelOutputs, hi - o);
                for (int p = 0; p < panels; p++)
                {
                    int r0 = p * RowPanelHeight;
                    RowPanelBlockAvx2(panel + (long)p * inF * RowPanelHeight, inF, w, o, hi, bias, block);
                    StoreRowPanelBlock(block, y + (long)r0 * outF + o, outF, Math.Min(RowPanelHeight, rows - r0), width);
                }
            }
            return;
        }
        for (int o = lo; o < hi; o += 8)
        {
            int width = Math.Min(8, hi - o);
            for (int p = 0; p < panels; p += 2)
            {
                int r0 = p * RowPanelHeight, count = Math.Min(2 * RowPanelHeight, rows - r0);
                float* first = panel + (long)p * inF * RowPanelHeight;
                if (count > RowPanelHeight) RowPanelBlock<Two>(first, inF, w, o, hi, bias, block);
                else RowPanelBlock<One>(first, inF, w, o, hi, bias, block);
                StoreRowPanelBlock(block, y + (long)r0 * outF + o, outF, count, width);
            }
        }
    }

    /// <summary>
    /// panel[i·16 + j] = x[j, i] for the panel's <paramref name="count"/> rows, zero for the rows past them (their lanes are
    /// computed and never stored): 8 × 8 blocks transposed in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackRowPanel(float* x, int count, int inF, float* panel)
    {
        int j = 0;
        for (; j + 8 <= count; j += 8)
        {
            float* x0 = x + (long)j * inF;
            int i = 0;
            for (; i + 8 <= inF; i += 8) CpuOps.Transpose8x8(x0 + i, inF, panel + (long)i * RowPanelHeight + j, RowPanelHeight);
            for (; i < inF; i++)
                for (int k = 0; k < 8; k++) panel[(long)i * RowPanelHeight + j + k] = x0[(long)k * inF + i];
        }
        for (; j < count; j++)
        {
            float* xj = x + (long)j * inF;
            for (int i = 0; i < inF; i++) panel[(long)i * RowPanelHeight + j] = xj[i];
        }
        if (j < RowPanelHeight)
            for (int i = 0; i < inF; i++)
                for (int z = j; z < RowPanelHeight; z++) panel[(long)i * RowPanelHeight + z] = 0f;
    }

    /// <summary>
    /// Outputs o..o+7 (those below <paramref name="hi"/>; the others repeat output hi − 1's weights, never stored) of one or
    /// two row panels (P = One or Two: 16 or 32 rows) into <paramref name="block"/> [8 outputs][32 rows], bias added.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RowPanelBlock<P>(float* panel, int inF, float* w, int o, int hi, float* bias, float* block) where P : struct, IRowCount
    {
        bool two = P.Count == 2;
        float* w0 = w + (long)o * inF, w1 = w + (long)Math.Min(o + 1, hi - 1) * inF, w2 = w + (long)Math.Min(o + 2, hi - 1) * inF,
               w3 = w + (long)Math.Min(o + 3, hi - 1) * inF, w4 = w + (long)Math.Min(o + 4, hi - 1) * inF, w5 = w + (long)Math.Min(o + 5, hi - 1) * inF,
               w6 = w + (long)Math.Min(o + 6, hi - 1) * inF, w7 = w + (long)Math.Min(o + 7, hi - 1) * inF;
        var a00 = Vector512<float>.Zero; var a01 = a00; var a10 = a00; var a11 = a00; var a20 = a00; var a21 = a00; var a30 = a00; var a31 = a00;
        var a40 = a00; var a41 = a00; var a50 = a00; var a51 = a00; var a60 = a00; var a61 = a00; var a70 = a00; var a71 = a00;
        float* p0 = panel, p1 = panel + (long)inF * RowPanelHeight;
        for (int i = 0; i < inF; i++, p0 += RowPanelHeight, p1 += RowPanelHeight)
        {
            var x0 = Vector512.Load(p0);
            var x1 = two ? Vector512.Load(p1) : x0;
            var b = Vector512.Create(w0[i]);
            a00 = Vector512.FusedMultiplyAdd(x0, b, a00); if (two) a01 = Vector512.FusedMultiplyAdd(x1, b, a01);
            b = Vector512.Create(w1[i]);
            a10 = Vector512.FusedMultiplyAdd(x0, b, a10); if (two) a11 = Vector512.FusedMultiplyAdd(x1, b, a11);
            b = Vector512.Create(w2[i]);
            a20 = Vector512.FusedMultiplyAdd(x0, b, a20); if (two) a21 = Vector512.FusedMultiplyAdd(x1, b, a21);
            b = Vector512.Create(w3[i]);
            a30 = Vector512.FusedMultiplyAdd(x0, b, a30); if (two) a31 = Vector512.FusedMultiplyAdd(x1, b, a31);
            b = Vector512.Create(w4[i]);
            a40 = Vector512.FusedMultiplyAdd(x0, b, a40); if (two) a41 = Vector512.FusedMultiplyAdd(x1, b, a41);
            b = Vector512.Create(w5[i]);
            a50 = Vector512.FusedMultiplyAdd(x0, b, a50); if (two) a51 = Vector512.FusedMultiplyAdd(x1, b, a51);
            b = Vector512.Create(w6[i]);
            a60 = Vector512.FusedMultiplyAdd(x0, b, a60); if (two) a61 = Vector512.FusedMultiplyAdd(x1, b, a61);
            b = Vector512.Create(w7[i]);
            a70 = Vector512.FusedMultiplyAdd(x0, b, a70); if (two) a71 = Vector512.FusedMultiplyAdd(x1, b, a71);
        }
        // + bias (0 without one: the same s + 0 as Reference)
        Vector512<float> Bias(int c) => Vector512.Create(bias != null ? bias[Math.Min(o + c, hi - 1)] : 0f);
        const int row = 2 * RowPanelHeight;
        (a00 + Bias(0)).Store(block); (a10 + Bias(1)).Store(block + row); (a20 + Bias(2)).Store(block + 2 * row); (a30 + Bias(3)).Store(block + 3 * row);
        (a40 + Bias(4)).Store(block + 4 * row); (a50 + Bias(5)).Store(block + 5 * row); (a60 + Bias(6)).Store(block + 6 * row); (a70 + Bias(7)).Store(block + 7 * row);
        if (two)
        {
            (a01 + Bias(0)).Store(block + 16); (a11 + Bias(1)).Store(block + row + 16); (a21 + Bias(2)).Store(block + 2 * row + 16); (a31 + Bias(3)).Store(block + 3 * row + 16);
            (a41 + Bias(4)).Store(block + 4 * row + 16); (a51 + Bias(5)).Store(block + 5 * row + 16); (a61 + Bias(6)).Store(block + 6 * row + 16); (a71 + Bias(7)).Store(block + 7 * row + 16);
        }
    }

    /// <summary>y[r, c] = block[c][r] for the block's <paramref name="rows"/> rows and <paramref name="width"/> outputs: whole 8 × 8 blocks transposed in registers, the rest one at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void StoreRowPanelBlock(float* block, float* y, int outF, int rows, int width)
    {
        const int row = 2 * RowPanelHeight;
        int r = 0;
        if (width == 8)
            for (; r + 8 <= rows; r += 8) CpuOps.Transpose8x8(block + r, row, y + (long)r * outF, outF);
        for (; r < rows; r++)
            for (int c = 0; c < width; c++) y[(long)r * outF + c] = block[c * row + r];
    }

    /// <summary>
    /// The order every output is computed in, scalar: the definition the kernel matches bit for bit on either instruction
    /// set (tests), and what a CPU without AVX2 could run.
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
    static void Block<R>(float* x, int inF, float* panel, float* panelBias, float* y, PanelStore store, byte* prefetch = null, (int First, int Count) lines = default)
        where R : struct, IRowCount
    {
        int n = R.Count;
        // Prefetches of lines.First.. of `prefetch` into L2, one every `stride` iterations (kept panels: the next panel).
        int stride = lines.Count > 0 ? Math.Max(1, inF / lines.Count) : int.MaxValue, countdown = stride, line = lines.First, lastLine = lines.First + lines.Count;
        float* x0 = x, x1 = x + inF, x2 = x1 + inF, x3 = x2 + inF, x4 = x3 + inF, x5 = x4 + inF, x6 = x5 + inF, x7 = x6 + inF;
        var a00 = Vector512<float>.Zero; var a01 = a00; var a10 = a00; var a11 = a00; var a20 = a00; var a21 = a00; var a30 = a00; var a31 = a00;
        var a40 = a00; var a41 = a00; var a50 = a00; var a51 = a00; var a60 = a00; var a61 = a00; var a70 = a00; var a71 = a00;
        float* p = panel;
        for (int i = 0; i < inF; i++, p += PanelWidth)
        {
            if (--countdown == 0)
            {
                countdown = stride;
                if (line < lastLine) Sse.Prefetch1(prefetch + 64L * line++);
            }
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

/// <summary>The instruction set <see cref="CpuGemm"/>'s blocks run on (see <see cref="CpuGemm.Isa"/>).</summary>
public enum GemmIsa { None, Avx2, Avx512 }
