using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// The product of an integer-format weight matrix with many activation rows (a prefill, a long batch):
/// y [n, rows] = x [n, cols] · Wᵀ as a blocked GEMM on AVX-VNNI. <see cref="WeightProduct"/> quantizes the
/// activation rows once (Q8_0 or Q8_K, exactly as the one-row products do); this class then
/// <list type="number">
/// <item>turns them into plain int8 rows plus, per weight sub-block, the activation's scale and the sum of its
/// levels (what the weight's offset or min multiplies);</item>
/// <item>repacks eight weight rows at a time into a <em>panel</em>: every level as an unsigned byte, four
/// consecutive elements of each of the eight rows side by side (32 bytes = one vector), and the eight rows'
/// sub-block scales (and mins) as float vectors;</item>
/// <item>multiplies a panel by four activation rows at a time: per four elements, one broadcast of each
/// activation row's four bytes and one <c>vpdpbusd</c> per activation row gives all eight weight rows' partial
/// sums in the eight int32 lanes, so the integer sum of a sub-block needs no horizontal add and its scale is
/// applied once per (sub-block, activation row) to eight outputs at once.</item>
/// </list>
/// WHY: the one-row dot product (<see cref="Q8_0.Dot"/>) pays a conversion, a scale multiply and finally a
/// horizontal sum for every (weight row, activation row, block), and rereads each activation row from memory
/// for every weight row; llama.cpp prefills 10–20× faster with tiled integer GEMM. The repack happens per
/// product, in a thread's scratch, never in memory held with the model (the weights stay views into the file).
/// <para>Unsigned weight levels: <c>vpdpbusd</c> multiplies unsigned by signed bytes. Each format's weight is
/// s·(u − offset) − min with u ≥ 0: Q8_0 s = d, u = q + 128, offset 128; Q4_0 u = the nibble, offset 8; Q6_K
/// s = d·scale, offset 32; Q4_K/Q5_K s = d·scale, offset 0 and min = dmin·m. The offset is taken off exactly in
/// integers (start the sum at −offset·Σa), the min in floats (−min·d_a·Σa), as ggml's K-quant dots use bsums.
/// Products stay within int32: a lane sums at most 16 products of 255·127 per sub-block.</para>
/// </summary>
public sealed unsafe class IntegerGemm
{
    /// <summary>Weight rows per panel: the eight int32 lanes of a vector.</summary>
    public const int PanelRows = 8;
    /// <summary>Activation rows per pass over a thread's panels: their levels stay in L2 (256 × 4864 bytes = 1.2 MiB).</summary>
    const int ChunkRows = 256;
    /// <summary>From this many activation rows on, a product takes the GEMM: below it the repack costs more than it saves.</summary>
    public const int MinRows = 16;

    readonly Action<int, int> body;
    WeightMatrix matrix = null!;
    float* y;
    int n, cols, subBlocks, subBlock, offset;
    bool mins;
    // Activation side: levels [n, cols] (int8), and per (row, sub-block): scale, integer start −offset·Σq, float −d·Σq.
    byte[] levels = [];
    float[] activationScales = [], minTerms = [];
    int[] starts = [];

    public IntegerGemm() => body = SharedUnits;

    /// <summary>Panels per unit of the shared split: 32 weight rows, about a fiftieth of a 0.5B-shape q projection.</summary>
    const int PanelsPerUnit = 4;
    int panelCount, unitsPerChunk, nextUnit;

    /// <summary>Each thread's body in a split product: takes units until none are left (its own range is ignored).</summary>
    void SharedUnits(int ignoredLo, int ignoredHi)
    {
        int units = unitsPerChunk * ((n + ChunkRows - 1) / ChunkRows);
        for (int u; (u = Interlocked.Increment(ref nextUnit) - 1) < units;)
        {
            int chunk = u / unitsPerChunk, first = (u % unitsPerChunk) * PanelsPerUnit;
            Panels(first, Math.Min(panelCount, first + PanelsPerUnit), chunk * ChunkRows, Math.Min(n, (chunk + 1) * ChunkRows));
        }
    }

    /// <summary>Whether a product of <paramref name="format"/> with <paramref name="n"/> activation rows runs here.</summary>
    public static bool Takes(WeightFormat format, int n)
        => n >= MinRows && IntegerDot.UseVnni && format is WeightFormat.Q8_0 or WeightFormat.Q4_0 or WeightFormat.Q4_K or WeightFormat.Q5_K or WeightFormat.Q6_K;

    /// <summary>Elements per weight sub-block (one scale): 16 for Q6_K, 32 for the others.</summary>
    static int SubBlockOf(WeightFormat format) => format == WeightFormat.Q6_K ? 16 : 32;

    static int OffsetOf(WeightFormat format) => format switch
    {
        WeightFormat.Q8_0 => 128,
        WeightFormat.Q4_0 => 8,
        WeightFormat.Q6_K => 32,
        _ => 0,
    };

    /// <summary>
    /// y [n, rows] = x · Wᵀ from the activation rows already quantized by <see cref="WeightProduct"/> at
    /// <paramref name="quantized"/> (<paramref name="activationRowBytes"/> apart, Q8_0 or Q8_K as
    /// <see cref="WeightCodec.ActivationFormat"/> says), split by panels over <see cref="Models.Cpu.CpuThreads"/>.
    /// </summary>
    public void Run(WeightMatrix m, byte* quantized, long activationRowBytes, int n, float* y)
    {
        matrix = m;
        this.y = y;
        this.n = n;
        cols = m.Cols;
        subBlock = SubBlockOf(m.Format);
        subBlocks = cols / subBlock;
        offset = OffsetOf(m.Format);
        mins = m.Format is WeightFormat.Q4_K or WeightFormat.Q5_K;
        PrepareActivations(quantized, activationRowBytes, WeightCodec.ActivationFormat(m.Format)!.Value);
        panelCount = (m.Rows + PanelRows - 1) / PanelRows;
        if (Models.Cpu.CpuThreads.Count <= 1 || panelCount < 2)
        {
            Panels(0, panelCount, 0, n);
            return;
        }
        // Several threads take units of (activation-row chunk, PanelsPerUnit panels) from a shared counter, chunk by chunk,
        // rather than one fixed half of the panels each. WHY: as in WeightProduct, a thread the host deschedules for a few
        // milliseconds no longer holds the product up (the other takes its units), and a thread that finishes its half
        // early no longer waits for the other. The work per unit is what the fixed split did: each (chunk, panel) once.
        unitsPerChunk = (panelCount + PanelsPerUnit - 1) / PanelsPerUnit;
        nextUnit = 0;
        Models.Cpu.CpuThreads.For(unitsPerChunk * ((n + ChunkRows - 1) / ChunkRows), body);
    }

    void PrepareActivations(byte* quantized, long rowBytes, WeightFormat activation)
    {
        long levelBytes = (long)n * cols, terms = (long)n * subBlocks;
        if (levels.Length < levelBytes) levels = GC.AllocateUninitializedArray<byte>(checked((int)levelBytes), pinned: true);
        if (starts.Length < terms)
        {
            starts = GC.AllocateUninitializedArray<int>(checked((int)terms), pinned: true);
            activationScales = GC.AllocateUninitializedArray<float>((int)terms, pinned: true);
            minTerms = GC.AllocateUninitializedArray<float>((int)terms, pinned: true);
        }
        fixed (byte* lv = levels)
        fixed (int* st = starts)
        fixed (float* sc = activationScales, mt = minTerms)
            for (int r = 0; r < n; r++)
            {
                byte* a = quantized + r * rowBytes;
                byte* outLevels = lv + (long)r * cols;
                long t = (long)r * subBlocks;
                if (activation == WeightFormat.Q8_0)
                {
                    for (int b = 0; b < subBlocks; b++, a += Q8_0.BlockBytes)
                    {
                        var q = Avx.LoadVector256((sbyte*)(a + 2));
                        q.AsByte().Store(outLevels + 32L * b);
                        float d = Q8_0.HalfAt(a);
                        int sum = Sum(q);
                        sc[t + b] = d;
                        st[t + b] = -offset * sum;
                        mt[t + b] = -d * sum;
                    }
                }
                else // Q8_K: one scale per 256, sums of 16 stored with the block
                {
                    int perBlock = Q8_K.BlockElements / subBlock;
                    for (int b = 0; b < cols / Q8_K.BlockElements; b++, a += Q8_K.BlockBytes)
                    {
                        Buffer.MemoryCopy(a + Q8_K.QuantsOffset, outLevels + (long)b * Q8_K.BlockElements, Q8_K.BlockElements, Q8_K.BlockElements);
                        float d = Q8_K.Scale(a);
                        for (int s = 0; s < perBlock; s++)
                        {
                            int sum = subBlock == 16 ? Q8_K.Sum16(a, s) : Q8_K.Sum16(a, 2 * s) + Q8_K.Sum16(a, 2 * s + 1);
                            long i = t + (long)b * perBlock + s;
                            sc[i] = d;
                            st[i] = -offset * sum;
                            mt[i] = -d * sum;
                        }
                    }
                }
            }
    }

    /// <summary>Σ of 32 signed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Sum(Vector256<sbyte> q)
        => Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256.Create((byte)1), q), Vector256.Create((short)1)));

    // A thread's scratch: one panel (levels, scales, mins) and one row's unpacked levels, scales and mins.
    [ThreadStatic] static byte[]? panelLevels, rowLevels;
    [ThreadStatic] static float[]? panelScales, panelMins, rowScales, rowMins;

    // Fully optimised from the first call (no tier-0 or OSR code around the tiles: a prefill calls this a few times only).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    /// <summary>Panels lo…hi times activation rows rowLo…rowHi (in chunks of <see cref="ChunkRows"/>).</summary>
    void Panels(int lo, int hi, int rowLo, int rowHi)
    {
        var m = matrix;
        int groups = subBlock / 4;
        // Q8_0 / Q4_0 panels: eight rows' blocks transposed in registers (EightRowBatch) instead of one int per store.
        bool transposedRepack = EightRowBatch.Takes(m.Format);
        if (panelLevels is null || panelLevels.Length < cols * PanelRows) panelLevels = GC.AllocateUninitializedArray<byte>(cols * PanelRows, pinned: true);
        if (rowLevels is null || rowLevels.Length < cols) rowLevels = GC.AllocateUninitializedArray<byte>(cols, pinned: true);
        if (panelScales is null || panelScales.Length < subBlocks * PanelRows)
        {
            panelScales = GC.AllocateUninitializedArray<float>(subBlocks * PanelRows, pinned: true);
            panelMins = GC.AllocateUninitializedArray<float>(subBlocks * PanelRows, pinned: true);
        }
        if (rowScales is null || rowScales.Length < subBlocks)
        {
            rowScales = GC.AllocateUninitializedArray<float>(subBlocks, pinned: true);
            rowMins = GC.AllocateUninitializedArray<float>(subBlocks, pinned: true);
        }
        fixed (byte* panel = panelLevels, unpacked = rowLevels, lv = levels)
        fixed (float* ps = panelScales, pm = panelMins, rs = rowScales, rm = rowMins, asc = activationScales, mt = minTerms)
        fixed (int* st = starts)
            for (int first = rowLo; first < rowHi; first += ChunkRows)
            {
                int last = Math.Min(rowHi, first + ChunkRows);
                for (int p = lo; p < hi; p++)
                {
                    int row0 = p * PanelRows, valid = Math.Min(PanelRows, m.Rows - row0);
                    if (transposedRepack) RepackTransposed(m, row0, valid, panel, ps);
                    else for (int lane = 0; lane < PanelRows; lane++)
                    {
                        if (lane < valid) Unpack(m.Format, m.Row(row0 + lane), cols, unpacked, rs, rm);
                        else
                        {
                            // Rows past the matrix: zero levels, scales and mins, so their lanes come out 0 (and are not stored).
                            new Span<byte>(unpacked, cols).Clear();
                            new Span<float>(rs, subBlocks).Clear();
                            new Span<float>(rm, subBlocks).Clear();
                        }
                        int* source = (int*)unpacked;
                        int* destination = (int*)panel + lane;
                        for (int k4 = 0; k4 < cols / 4; k4++) destination[k4 * PanelRows] = source[k4];
                        for (int s = 0; s < subBlocks; s++)
                        {
                            ps[s * PanelRows + lane] = rs[s];
                            pm[s * PanelRows + lane] = rm[s];
                        }
                    }
                    float* yp = y + row0;
                    int r = first;
                    for (; r + 4 <= last; r += 4)
                        Tile4(panel, ps, mins ? pm : null, subBlocks, groups, lv + (long)r * cols, cols,
                              asc + (long)r * subBlocks, st + (long)r * subBlocks, mt + (long)r * subBlocks, subBlocks,
                              yp + (long)r * m.Rows, m.Rows, valid);
                    for (; r < last; r++)
                        Tile1(panel, ps, mins ? pm : null, subBlocks, groups, lv + (long)r * cols,
                              asc + (long)r * subBlocks, st + (long)r * subBlocks, mt + (long)r * subBlocks, yp + (long)r * m.Rows, valid);
                }
            }
    }

    /// <summary>
    /// The panel of rows row0… (<paramref name="valid"/> of them; the other lanes repeat the last row and are not stored)
    /// of a Q8_0 / Q4_0 matrix: each block's eight rows transposed in registers, eight vectors per block, and the rows'
    /// block scales side by side — what the lane-by-lane path writes, at a fraction of its stores.
    /// </summary>
    static void RepackTransposed(WeightMatrix m, int row0, int valid, byte* panel, float* scales)
    {
        bool q4 = m.Format == WeightFormat.Q4_0;
        long blockBytes = q4 ? Q4_0.BlockBytes : Q8_0.BlockBytes;
        byte* b0 = m.Row(row0), b1 = m.Row(row0 + Math.Min(1, valid - 1)), b2 = m.Row(row0 + Math.Min(2, valid - 1)),
              b3 = m.Row(row0 + Math.Min(3, valid - 1)), b4 = m.Row(row0 + Math.Min(4, valid - 1)), b5 = m.Row(row0 + Math.Min(5, valid - 1)),
              b6 = m.Row(row0 + Math.Min(6, valid - 1)), b7 = m.Row(row0 + Math.Min(7, valid - 1));
        float* half = HalfTable.Values;
        for (int b = 0; b < m.Cols / 32; b++, b0 += blockBytes, b1 += blockBytes, b2 += blockBytes, b3 += blockBytes,
                                              b4 += blockBytes, b5 += blockBytes, b6 += blockBytes, b7 += blockBytes)
        {
            EightRowBatch.Transposed(q4, b0, b1, b2, b3, b4, b5, b6, b7,
                                     out var g0, out var g1, out var g2, out var g3, out var g4, out var g5, out var g6, out var g7);
            byte* to = panel + 256L * b;
            g0.Store(to); g1.Store(to + 32); g2.Store(to + 64); g3.Store(to + 96);
            g4.Store(to + 128); g5.Store(to + 160); g6.Store(to + 192); g7.Store(to + 224);
            float* s = scales + b * PanelRows;
            s[0] = HalfTable.At(half, b0); s[1] = HalfTable.At(half, b1); s[2] = HalfTable.At(half, b2); s[3] = HalfTable.At(half, b3);
            s[4] = HalfTable.At(half, b4); s[5] = HalfTable.At(half, b5); s[6] = HalfTable.At(half, b6); s[7] = HalfTable.At(half, b7);
        }
    }

    /// <summary>
    /// One weight row as unsigned levels u[cols] with per-sub-block scales s and mins (weight = s·(u − offset) − min),
    /// exactly the values <see cref="WeightCodec.Decode"/> gives.
    /// </summary>
    static void Unpack(WeightFormat format, byte* row, int cols, byte* u, float* s, float* min)
    {
        switch (format)
        {
            case WeightFormat.Q8_0:
                for (int b = 0; b < cols / 32; b++, row += Q8_0.BlockBytes)
                {
                    (Avx.LoadVector256(row + 2) ^ Vector256.Create((byte)0x80)).Store(u + 32 * b);
                    s[b] = Q8_0.HalfAt(row);
                    min[b] = 0;
                }
                return;
            case WeightFormat.Q4_0:
                for (int b = 0; b < cols / 32; b++, row += Q4_0.BlockBytes)
                {
                    var packed = Sse2.LoadVector128(row + 2);
                    (packed & Vector128.Create((byte)0x0F)).Store(u + 32 * b);
                    (Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F)).Store(u + 32 * b + 16);
                    s[b] = Q8_0.HalfAt(row);
                    min[b] = 0;
                }
                return;
            case WeightFormat.Q4_K:
                for (int b = 0; b < cols / 256; b++, row += Q4_K.BlockBytes)
                    Q4_K.Levels(row, u + 256 * b, s + 8 * b, min + 8 * b);
                return;
            case WeightFormat.Q5_K:
                for (int b = 0; b < cols / 256; b++, row += Q5_K.BlockBytes)
                    Q5_K.Levels(row, u + 256 * b, s + 8 * b, min + 8 * b);
                return;
            case WeightFormat.Q6_K:
                for (int b = 0; b < cols / 256; b++, row += Q6_K.BlockBytes)
                {
                    Q6_K.Levels(row, u + 256 * b, s + 16 * b);
                    new Span<float>(min + 16 * b, 16).Clear();
                }
                return;
            default:
                throw new InvalidOperationException($"no integer GEMM for {format}");
        }
    }

    /// <summary>
    /// A panel (8 weight rows) times four activation rows <paramref name="a"/> (<paramref name="cols"/> apart, per-sub-block
    /// terms <paramref name="terms"/> apart): 8 × 4 outputs, stored at y + j·<paramref name="yStride"/> (the first
    /// <paramref name="valid"/> lanes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    static void Tile4(byte* panel, float* ws, float* wm, int subBlocks, int groups, byte* a, int cols,
                      float* ad, int* start, float* minTerm, int terms, float* y, int yStride, int valid)
    {
        var f0 = Vector256<float>.Zero; var f1 = f0; var f2 = f0; var f3 = f0;
        byte* a0 = a, a1 = a + cols, a2 = a + 2 * cols, a3 = a + 3 * cols;
        byte* wp = panel;
        for (int s = 0; s < subBlocks; s++)
        {
            // Two integer accumulators per activation row (even and odd groups of four elements): vpdpbusd has a
            // latency of ~5 cycles, and with one chain per row a sub-block's eight dependent vpdpbusd per row would bound
            // the tile by latency rather than by throughput.
            var i0 = Vector256.Create(start[s]);
            var i1 = Vector256.Create(start[terms + s]);
            var i2 = Vector256.Create(start[2 * terms + s]);
            var i3 = Vector256.Create(start[3 * terms + s]);
            Vector256<int> j0 = Vector256<int>.Zero, j1 = j0, j2 = j0, j3 = j0;
            for (int g = 0; g < groups; g += 2, wp += 64, a0 += 8, a1 += 8, a2 += 8, a3 += 8)
            {
                var w = Avx.LoadVector256(wp);
                i0 = AvxVnni.MultiplyWideningAndAdd(i0, w, Vector256.Create(*(int*)a0).AsSByte());
                i1 = AvxVnni.MultiplyWideningAndAdd(i1, w, Vector256.Create(*(int*)a1).AsSByte());
                i2 = AvxVnni.MultiplyWideningAndAdd(i2, w, Vector256.Create(*(int*)a2).AsSByte());
                i3 = AvxVnni.MultiplyWideningAndAdd(i3, w, Vector256.Create(*(int*)a3).AsSByte());
                w = Avx.LoadVector256(wp + 32);
                j0 = AvxVnni.MultiplyWideningAndAdd(j0, w, Vector256.Create(*(int*)(a0 + 4)).AsSByte());
                j1 = AvxVnni.MultiplyWideningAndAdd(j1, w, Vector256.Create(*(int*)(a1 + 4)).AsSByte());
                j2 = AvxVnni.MultiplyWideningAndAdd(j2, w, Vector256.Create(*(int*)(a2 + 4)).AsSByte());
                j3 = AvxVnni.MultiplyWideningAndAdd(j3, w, Vector256.Create(*(int*)(a3 + 4)).AsSByte());
            }
            i0 += j0; i1 += j1; i2 += j2; i3 += j3;
            var scale = Avx.LoadVector256(ws + s * PanelRows);
            f0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i0), scale * Vector256.Create(ad[s]), f0);
            f1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i1), scale * Vector256.Create(ad[terms + s]), f1);
            f2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i2), scale * Vector256.Create(ad[2 * terms + s]), f2);
            f3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i3), scale * Vector256.Create(ad[3 * terms + s]), f3);
            if (wm != null)
            {
                var min = Avx.LoadVector256(wm + s * PanelRows);
                f0 = Fma.MultiplyAdd(min, Vector256.Create(minTerm[s]), f0);
                f1 = Fma.MultiplyAdd(min, Vector256.Create(minTerm[terms + s]), f1);
                f2 = Fma.MultiplyAdd(min, Vector256.Create(minTerm[2 * terms + s]), f2);
                f3 = Fma.MultiplyAdd(min, Vector256.Create(minTerm[3 * terms + s]), f3);
            }
        }
        Store(f0, y, valid);
        Store(f1, y + yStride, valid);
        Store(f2, y + 2L * yStride, valid);
        Store(f3, y + 3L * yStride, valid);
    }

    /// <summary><see cref="Tile4"/> for one activation row (the last rows of a chunk).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    static void Tile1(byte* panel, float* ws, float* wm, int subBlocks, int groups, byte* a,
                      float* ad, int* start, float* minTerm, float* y, int valid)
    {
        var f = Vector256<float>.Zero;
        byte* wp = panel;
        for (int s = 0; s < subBlocks; s++)
        {
            var i = Vector256.Create(start[s]);
            for (int g = 0; g < groups; g++, wp += 32, a += 4)
                i = AvxVnni.MultiplyWideningAndAdd(i, Avx.LoadVector256(wp), Vector256.Create(*(int*)a).AsSByte());
            f = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i), Avx.LoadVector256(ws + s * PanelRows) * Vector256.Create(ad[s]), f);
            if (wm != null) f = Fma.MultiplyAdd(Avx.LoadVector256(wm + s * PanelRows), Vector256.Create(minTerm[s]), f);
        }
        Store(f, y, valid);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(Vector256<float> v, float* y, int valid)
    {
        if (valid == PanelRows)
        {
            v.Store(y);
            return;
        }
        for (int i = 0; i < valid; i++) y[i] = v.GetElement(i);
    }
}
