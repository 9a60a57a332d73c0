using Pargs.Models.Cpu;

namespace Pargs.Weights;

/// <summary>
/// A <see cref="WeightMatrix"/> times a few activation rows, split over <see cref="CpuThreads"/> by output rows.
/// It owns the quantized-activation buffer and makes its job delegate once, so a decoding step's hundreds of
/// products allocate nothing. Not thread-safe: one owner (a kernel instance, or one per thread).
/// </summary>
public sealed unsafe class WeightProduct
{
    readonly Action<int, int> body;
    // Many activation rows (a prefill): blocked GEMMs instead of one dot product per (weight row, activation row).
    readonly IntegerGemm integerGemm = new();
    readonly HalfGemm halfGemm = new();
    byte[] activations = Array.Empty<byte>();
    // One activation row against Q8_0 / Q4_0 weights: the block scales as floats and FourRowDot's offsets.
    float[] activationScales = Array.Empty<float>();
    int[] activationOffsets = Array.Empty<int>();
    float* scales;
    int* offsets;
    bool fourRows;
    float[] rounded = Array.Empty<float>();
    WeightMatrix matrix = null!;
    float* x, y;
    byte* quantized;
    long activationRowBytes;
    int n;

    readonly Action<int, int> chunkedBody;
    // The shared row split of a multi-threaded product (ChunkedRows): the next chunk to take, the chunk size in rows.
    int nextChunk, chunkRows;

    readonly Action<int, int> quantizeBody;
    WeightFormat activationFormat;

    public WeightProduct()
    {
        quantizeBody = QuantizeRows;
        body = Rows;
        chunkedBody = ChunkedRows;
    }

    /// <summary>y [n, rows] = x [n, cols] · Wᵀ.</summary>
    public void Run(WeightMatrix matrix, float* x, int n, float* y)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n));
        if (n == 0 || matrix.Rows == 0) return;
        if (matrix.Cols == 0)
        {
            new Span<float>(y, checked(n * matrix.Rows)).Clear(); // empty dot products
            return;
        }
        if (matrix.ActivationRounding is { } rounding)
        {
            // The float32 reference of an integer product: x rounded as the integer path quantizes it.
            long rowBytes = WeightFormats.ByteCount(rounding, matrix.Cols, matrix.Name);
            var block = new byte[rowBytes];
            if (rounded.Length < (long)n * matrix.Cols) rounded = GC.AllocateUninitializedArray<float>(checked(n * matrix.Cols), pinned: true);
            for (int r = 0; r < n; r++)
            {
                WeightCodec.Encode(rounding, new ReadOnlySpan<float>(x + (long)r * matrix.Cols, matrix.Cols), block);
                WeightCodec.Decode(rounding, block, rounded.AsSpan(r * matrix.Cols, matrix.Cols));
            }
            x = (float*)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(rounded, 0);
        }
        this.matrix = matrix;
        this.x = x;
        this.y = y;
        this.n = n;
        fourRows = false;
        if (matrix.ActivationRounding is null && HalfGemm.Takes(matrix.Format, n))
        {
            halfGemm.Run(matrix, x, n, y);
            return;
        }
        if (WeightCodec.ActivationFormat(matrix.Format) is { } activationFormat)
        {
            // The activation rows are quantized once, before the split: every thread reads them all.
            activationRowBytes = WeightFormats.ByteCount(activationFormat, matrix.Cols, matrix.Name);
            long needed = activationRowBytes * n;
            if (activations.Length < needed) activations = GC.AllocateUninitializedArray<byte>(checked((int)needed), pinned: true);
            quantized = (byte*)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(activations, 0); // pinned: the address stays valid
            this.activationFormat = activationFormat;
            // A prefill's rows (hundreds) are quantized on every thread, a few rows on the caller.
            if (IntegerGemm.Takes(matrix.Format, n)) CpuThreads.For(n, quantizeBody);
            else QuantizeRows(0, n);
            // Below the GEMM's threshold: one row takes the four-row kernel, 2–15 rows (a decoding batch, a reward model's
            // k candidates) the eight-row batch kernel, whose outputs are the GEMM tiles' bits: a row's result does not
            // depend on how many rows (two or more) share the product.
            fourRows = n < IntegerGemm.MinRows && FourRowDot.Takes(matrix.Format);
            if (fourRows) PrepareFourRows(matrix);
            if (IntegerGemm.Takes(matrix.Format, n))
            {
                integerGemm.Run(matrix, quantized, activationRowBytes, n, y);
                return;
            }
        }
        // Split only when each thread gets at least 16 Ki multiply-adds (MatMulJob, the LM head, asks 256 Ki: it follows a
        // forward long enough for the worker to fall asleep, where these products come microseconds apart).
        int minPerThread = Math.Max(4, (1 << 14) / Math.Max(1, n * matrix.Cols));
        if (CpuThreads.Count <= 1 || matrix.Rows < 2 * minPerThread)
        {
            body(0, matrix.Rows);
            return;
        }
        // Several threads take chunks of rows from a shared counter rather than one fixed half each. WHY: on a busy
        // machine one thread is often descheduled for milliseconds; with fixed halves the other waits for it (a 2-thread
        // decode then ran slower than 1 thread), with chunks it does the work itself and the late thread finds none left.
        nextChunk = 0;
        chunkRows = Math.Max(Math.Max(16, minPerThread), (matrix.Rows + 8 * CpuThreads.Count - 1) / (8 * CpuThreads.Count) + 3) / 4 * 4;
        if (fourRows && n > 1) chunkRows = (chunkRows + EightRowBatch.Rows - 1) / EightRowBatch.Rows * EightRowBatch.Rows; // whole eight-row passes
        CpuThreads.For(matrix.Rows, chunkedBody, align: 4, minPerThread: minPerThread);
    }

    /// <summary>Activation rows lo…hi of x quantized into <see cref="quantized"/> (<see cref="activationFormat"/>).</summary>
    void QuantizeRows(int lo, int hi)
    {
        for (int r = lo; r < hi; r++)
            if (activationFormat == WeightFormat.Q8_0) Q8_0.QuantizeRow(x + (long)r * matrix.Cols, quantized + r * activationRowBytes, matrix.Cols / Q8_0.BlockElements);
            else WeightCodec.Encode(activationFormat, new ReadOnlySpan<float>(x + (long)r * matrix.Cols, matrix.Cols),
                                    new Span<byte>(quantized + r * activationRowBytes, (int)activationRowBytes));
    }

    /// <summary>F16 / BF16 rows of at most this many bytes are prefetched four rows ahead in a one-row product (<see cref="HalfRows"/>).</summary>
    const long MaxPrefetchedRowBytes = 2048;

    /// <summary>FourRowDot's per-block scales and offsets of each quantized activation row (row r's at r·blocks), in pinned buffers reused across products.</summary>
    void PrepareFourRows(WeightMatrix m)
    {
        int blocks = m.Cols / Q8_0.BlockElements;
        if (activationScales.Length < n * blocks)
        {
            activationScales = GC.AllocateUninitializedArray<float>(n * blocks, pinned: true);
            activationOffsets = GC.AllocateUninitializedArray<int>(n * blocks * FourRowDot.OffsetInts, pinned: true);
        }
        scales = (float*)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(activationScales, 0);
        offsets = (int*)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(activationOffsets, 0);
        for (int r = 0; r < n; r++)
            FourRowDot.Prepare(m.Format, quantized + r * activationRowBytes, blocks, scales + (long)r * blocks, offsets + (long)r * blocks * FourRowDot.OffsetInts);
    }

    /// <summary>Rows of a 2-byte float format at most this long are converted once into a stack buffer when several activation rows use them.</summary>
    const int MaxConvertedRow = 16384;

    /// <summary>
    /// F16 / BF16 rows. One activation row: converted in registers inside the dot product. Several (sibling
    /// candidates, a small prefill): each weight row is converted once into a float buffer that stays in L1,
    /// and the float32 dot product runs on it for every activation row.
    /// </summary>
    void HalfRows(WeightMatrix m, int lo, int hi)
    {
        int cols = m.Cols, rows = m.Rows;
        bool f16 = m.Format == WeightFormat.F16;
        if (n == 1 && m.RowBytes <= MaxPrefetchedRowBytes)
        {
            // Short rows, as for the integer formats: prefetch the row four ahead (in one run, a 4864 × 896 F16 product
            // from memory: 6.3 → 8.6 GB/s; 896 × 4864, long rows: no change, so those are left alone).
            for (int o = lo; o < hi; o++)
            {
                if (o + 4 < hi) FourRowDot.Prefetch(m.Row(o + 4), m.RowBytes);
                y[o] = f16 ? Float16.Dot((ushort*)m.Row(o), x, cols) : BFloat16.Dot((ushort*)m.Row(o), x, cols);
            }
            return;
        }
        if (n == 1 || cols > MaxConvertedRow)
        {
            for (int o = lo; o < hi; o++)
                for (int r = 0; r < n; r++)
                    y[(long)r * rows + o] = f16 ? Float16.Dot((ushort*)m.Row(o), x + (long)r * cols, cols) : BFloat16.Dot((ushort*)m.Row(o), x + (long)r * cols, cols);
            return;
        }
        float* converted = stackalloc float[cols];
        for (int o = lo; o < hi; o++)
        {
            var source = new ReadOnlySpan<ushort>(m.Row(o), cols);
            var destination = new Span<float>(converted, cols);
            if (f16) Float16.ToFloats(source, destination);
            else BFloat16.ToFloats(source, destination);
            for (int r = 0; r < n; r++) y[(long)r * rows + o] = CpuOps.Dot(converted, x + (long)r * cols, cols);
        }
    }

    /// <summary>Each thread's body in a split product: takes chunks of <see cref="chunkRows"/> rows until none are left (its own range is ignored).</summary>
    void ChunkedRows(int ignoredLo, int ignoredHi)
    {
        int rows = matrix.Rows;
        for (int chunk; (chunk = Interlocked.Increment(ref nextChunk) - 1) * (long)chunkRows < rows;)
            Rows(chunk * chunkRows, Math.Min(rows, (chunk + 1) * chunkRows));
    }

    /// <summary>Rows lo…hi of a product of 2–15 activation rows: <see cref="EightRowBatch"/>, eight weight rows per pass.</summary>
    void BatchRows(WeightMatrix m, int lo, int hi, int blocks)
    {
        byte** rows = stackalloc byte*[EightRowBatch.Rows];
        byte** next = stackalloc byte*[EightRowBatch.Rows];
        float* sums = stackalloc float[IntegerGemm.MinRows * EightRowBatch.Rows];
        // Each pass prefetches the next pass's rows (past hi: the next chunk's rows, a harmless read within the matrix).
        for (int first = lo; first < hi; first += EightRowBatch.Rows)
        {
            int valid = Math.Min(EightRowBatch.Rows, hi - first);
            // Lanes past hi repeat the last row: computed, not stored.
            for (int lane = 0; lane < EightRowBatch.Rows; lane++)
            {
                rows[lane] = m.Row(first + Math.Min(lane, valid - 1));
                next[lane] = m.Row(Math.Min(m.Rows - 1, first + EightRowBatch.Rows + lane));
            }
            EightRowBatch.Product(m.Format, rows, blocks, quantized, activationRowBytes, scales, offsets, n, sums, y + first, m.Rows, valid, next);
        }
    }

    // Each row order's inverse (stored row → the logical row that reads it), made once per order: a matrix keeps its order.
    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<int[], int[]> logicalRows = new();

    /// <summary>For a row order (logical row i reads stored row order[i]), which logical row reads each stored row.</summary>
    static int[] LogicalRows(int[] order) => logicalRows.GetValue(order, o =>
    {
        var logical = new int[o.Length];
        for (int i = 0; i < o.Length; i++) logical[o[i]] = i;
        return logical;
    });

    /// <summary>
    /// One activation row through a row-ordered view (GGUF's q/k projections, stored in Meta's interleaved rotary
    /// layout): stored rows lo…hi eight (Q8_0) or four at a time in the order they lie in the file, each result written to the logical
    /// row that reads it. WHY: in logical order a pass reads every other stored row (Hugging Face row a·D/2 + b is stored
    /// row 2b + a), so the pass-ahead prefetch fetched rows read half a head later or never: the Llama-3.2-1B shape's
    /// Q8_0 q/k products streamed ~11 GB/s against ~15 for v/o (thread CPU time, one thread); in stored order they keep
    /// up with v/o. Every output is written once whichever thread's chunk holds its stored row (the chunks partition
    /// the stored rows; the order is a bijection).
    /// </summary>
    void StoredOrderRows(WeightMatrix m, int lo, int hi, int blocks,
                         delegate*<byte*, byte*, byte*, byte*, byte*, float*, int*, int, float*, long, void> four,
                         delegate*<byte*, byte*, int, float> dot, long distance, int[] logical)
    {
        long rowBytes = m.RowBytes;
        float* sums = stackalloc float[8];
        int stored = lo;
        if (m.Format == WeightFormat.Q8_0)
        {
            long eightAhead = FourRowDot.AheadOfRows(rowBytes, 8);
            for (; stored + 8 <= hi; stored += 8)
            {
                FourRowDot.Q8_0EightRows(m.Data + stored * rowBytes, rowBytes, quantized, scales, offsets, blocks, sums, eightAhead);
                for (int j = 0; j < 8; j++) y[logical[stored + j]] = sums[j];
            }
        }
        for (; stored + 4 <= hi; stored += 4)
        {
            byte* row = m.Data + stored * rowBytes;
            four(row, row + rowBytes, row + 2 * rowBytes, row + 3 * rowBytes, quantized, scales, offsets, blocks, sums, distance);
            y[logical[stored]] = sums[0];
            y[logical[stored + 1]] = sums[1];
            y[logical[stored + 2]] = sums[2];
            y[logical[stored + 3]] = sums[3];
        }
        for (; stored < hi; stored++) y[logical[stored]] = dot(m.Data + stored * rowBytes, quantized, blocks);
    }

    void Rows(int lo, int hi)
    {
        var m = matrix;
        int cols = m.Cols, rows = m.Rows;
        switch (m.Format)
        {
            case WeightFormat.F32 when m.RowOrder is null:
                CpuOps.MatMul(x, n, cols, (float*)m.Data, null, y, rows, lo, hi, m.KeptPanels);
                return;
            case WeightFormat.F32: // reordered rows (a GGUF q/k projection in float32): one dot product per row
                for (int o = lo; o < hi; o++)
                    for (int r = 0; r < n; r++) y[(long)r * rows + o] = CpuOps.Dot((float*)m.Row(o), x + (long)r * cols, cols);
                return;
            case WeightFormat.F16 or WeightFormat.BF16:
                HalfRows(m, lo, hi);
                return;
        }
        int blocks = cols / WeightFormats.BlockElements(m.Format);
        delegate*<byte*, byte*, int, float> dot = m.Format switch
        {
            WeightFormat.Q8_0 => &Q8_0.Dot,
            WeightFormat.Q4_0 => &Q4_0.Dot,
            WeightFormat.Q4_K => &Q4_K.Dot,
            WeightFormat.Q5_K => &Q5_K.Dot,
            WeightFormat.Q6_K => &Q6_K.Dot,
            _ => throw new InvalidOperationException($"no product for {m.Format}"),
        };
        int first = lo;
        if (fourRows && n > 1)
        {
            BatchRows(m, lo, hi, blocks);
            return;
        }
        if (fourRows)
        {
            // One activation row (decode; 2–15 took BatchRows above): four weight rows per pass (lo is a multiple of 4: the
            // split aligns to 4), the kernel prefetching the same block of the rows a few passes on as it reads each block
            // (FourRowDot.AheadOfRows). WHY: the hardware prefetchers stop at 4 KiB page boundaries, so without it passes
            // over short rows began on demand misses, and the Llama-3.2-1B shape's 2,176-byte rows half of each pass (9.3 →
            // 13.5 GB/s from memory). Past hi it fetches rows another thread or product reads; past the matrix's end,
            // prefetches are hints and never fault. A row-ordered view (GGUF q/k) is read in stored order (StoredOrderRows).
            delegate*<byte*, byte*, byte*, byte*, byte*, float*, int*, int, float*, long, void> four =
                m.Format == WeightFormat.Q8_0 ? &FourRowDot.Q8_0Rows : &FourRowDot.Q4_0Rows;
            long distance = FourRowDot.AheadOfRows(m.RowBytes);
            if (m.RowOrder is { } order)
            {
                StoredOrderRows(m, lo, hi, blocks, four, dot, distance, LogicalRows(order));
                return;
            }
            // Q8_0: eight rows per pass while eight are left (FourRowDot.Q8_0EightRows), then four.
            if (m.Format == WeightFormat.Q8_0)
            {
                long eightAhead = FourRowDot.AheadOfRows(m.RowBytes, 8);
                for (; first + 8 <= hi; first += 8)
                    FourRowDot.Q8_0EightRows(m.Row(first), m.RowBytes, quantized, scales, offsets, blocks, y + first, eightAhead);
            }
            for (; first + 4 <= hi; first += 4)
                four(m.Row(first), m.Row(first + 1), m.Row(first + 2), m.Row(first + 3), quantized, scales, offsets, blocks, y + first, distance);
        }
        // Each weight row is read once and applied to all n activation rows while it sits in L1; a row-ordered view's
        // rows in stored order, as StoredOrderRows and for the same reason (the K-quants' in-row prefetch runs on into the
        // next stored row): the 1B shape's Q4_K q/k products 6.0–6.7 → 7.1–8.2 GB/s, as its v/o.
        if (m.RowOrder is { } rowOrder)
        {
            int[] logical = LogicalRows(rowOrder);
            for (int stored = first; stored < hi; stored++)
            {
                byte* row = m.Data + stored * m.RowBytes;
                for (int r = 0; r < n; r++) y[(long)r * rows + logical[stored]] = dot(row, quantized + r * activationRowBytes, blocks);
            }
            return;
        }
        for (int o = first; o < hi; o++)
        {
            byte* row = m.Row(o);
            for (int r = 0; r < n; r++) y[(long)r * rows + o] = dot(row, quantized + r * activationRowBytes, blocks);
        }
    }
}
