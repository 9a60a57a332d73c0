using System.Runtime.InteropServices;

namespace Pargs.Weights;

/// <summary>
/// A [rows, cols] weight matrix in its stored format (row-major, each row a whole number of blocks, as GGUF and
/// safetensors lay tensors out), read in place from memory it does not own: a memory-mapped file
/// (<see cref="MappedFile"/>) or a pinned array. <see cref="Owner"/> keeps that memory alive as long as the
/// matrix is. The products (<see cref="MatMul"/>) compute on the stored bytes: F16/BF16 converted in registers,
/// integer formats against the activation quantized once per call, as llama.cpp does.
/// </summary>
public sealed unsafe class WeightMatrix
{
    [ThreadStatic] static WeightProduct? threadProduct;

    public WeightMatrix(string name, WeightFormat format, int rows, int cols, byte* data, long availableBytes, object? owner)
    {
        if (format == WeightFormat.Q8_K)
            throw new PargsException($"{name}: q8_K is an activation format; weights in it are not supported (llama.cpp stores none)");
        if (rows < 0 || cols < 0) throw new PargsException($"{name}: negative shape [{rows}, {cols}]");
        long rowBytes = WeightFormats.ByteCount(format, cols, name);
        if ((long)rows * rowBytes > availableBytes)
            throw new PargsException($"{name}: [{rows}, {cols}] in {WeightFormats.Name(format)} needs {(long)rows * rowBytes} bytes, only {availableBytes} are there (truncated data?)");
        Name = name;
        Format = format;
        Rows = rows;
        Cols = cols;
        RowBytes = rowBytes;
        Data = data;
        Owner = owner;
    }

    public string Name { get; }
    public WeightFormat Format { get; }
    public int Rows { get; }
    public int Cols { get; }
    /// <summary>Bytes of one stored row.</summary>
    public long RowBytes { get; }
    public long ByteLength => RowBytes * Rows;
    /// <summary>The first byte of row 0.</summary>
    public byte* Data { get; }
    /// <summary>What keeps <see cref="Data"/> valid (a <see cref="MappedFile"/>, a pinned array), or null when the caller does.</summary>
    public object? Owner { get; }

    /// <summary>Float32 only: the panels <see cref="Models.Cpu.CpuGemm"/> keeps for this matrix's model when it is held for inference only (<see cref="Models.Cpu.KeptPanels"/>), else null.</summary>
    public Models.Cpu.KeptPanels? KeptPanels { get; init; }

    /// <summary>
    /// Which stored row each logical row reads (null: row i is stored row i). Lets a matrix whose rows a loader
    /// must reorder stay a view: GGUF stores q/k projections in Meta's interleaved rotary layout, Pargs runs
    /// Hugging Face's (<see cref="Checkpoints.MetaRotaryLayout"/>), and a permutation of output rows costs no copy.
    /// </summary>
    public int[]? RowOrder { get; private init; }

    public byte* Row(int row) => Data + (RowOrder is { } order ? order[row] : row) * RowBytes;

    /// <summary>
    /// A float32 matrix's products round each activation row through <see cref="ActivationRounding"/> first (quantize,
    /// dequantize) — the float32 reference of an integer format's product: the same rounding of the input as the
    /// integer dot products, then plain float arithmetic on the dequantized weights (null: no rounding).
    /// </summary>
    public WeightFormat? ActivationRounding { get; private init; }

    /// <summary>This float32 matrix with its activations rounded through <paramref name="activation"/> (Q8_0 or Q8_K) in products.</summary>
    public WeightMatrix WithActivationRounding(WeightFormat activation)
    {
        if (Format != WeightFormat.F32) throw new ArgumentException($"{Name}: activation rounding is a float32 reference; this matrix is {WeightFormats.Name(Format)}");
        WeightFormats.ByteCount(activation, Cols, Name); // whole blocks
        return new WeightMatrix(Name, Format, Rows, Cols, Data, ByteLength, Owner) { RowOrder = RowOrder, ActivationRounding = activation };
    }

    /// <summary>
    /// The same matrix with its panels kept in <paramref name="kept"/> (a model held for inference only): a plain float32
    /// matrix's products then pack its panels once instead of at every call — the same panels, the same bits. Any other
    /// matrix (another format, reordered rows, activation rounding) is returned as it is: its products pack no panels.
    /// </summary>
    public WeightMatrix WithKeptPanels(Models.Cpu.KeptPanels? kept)
        => kept is null || Format != WeightFormat.F32 || RowOrder is not null || ActivationRounding is not null ? this
            : new WeightMatrix(Name, Format, Rows, Cols, Data, ByteLength, Owner) { KeptPanels = kept };

    /// <summary>The same stored bytes read with logical row i = stored row <paramref name="order"/>[i] (a permutation).</summary>
    public WeightMatrix WithRowOrder(int[] order)
    {
        if (order.Length != Rows) throw new ArgumentException($"{Name}: a row order of {order.Length} entries for {Rows} rows");
        var seen = new bool[Rows];
        foreach (int r in order)
        {
            if ((uint)r >= (uint)Rows || seen[r]) throw new ArgumentException($"{Name}: the row order is not a permutation of 0..{Rows - 1}");
            seen[r] = true;
        }
        return new WeightMatrix(Name, Format, Rows, Cols, Data, ByteLength, Owner) { RowOrder = (int[])order.Clone(), ActivationRounding = ActivationRounding };
    }

    /// <summary>
    /// Quantizes float32 values [rows, cols] into <paramref name="format"/> with ggml's reference quantizers,
    /// into a new pinned array the matrix owns.
    /// </summary>
    public static WeightMatrix Quantize(string name, WeightFormat format, ReadOnlySpan<float> values, int rows, int cols)
    {
        if (values.Length != (long)rows * cols) throw new ArgumentException($"{values.Length} values for [{rows}, {cols}]");
        long rowBytes = WeightFormats.ByteCount(format, cols, name);
        var bytes = GC.AllocateUninitializedArray<byte>(checked((int)(rowBytes * rows)), pinned: true);
        for (int r = 0; r < rows; r++)
            WeightCodec.Encode(format, values.Slice(r * cols, cols), bytes.AsSpan((int)(r * rowBytes), (int)rowBytes));
        return FromPinned(name, format, rows, cols, bytes);
    }

    /// <summary>A matrix over a copy of <paramref name="stored"/> (its stored bytes), in a new pinned array.</summary>
    public static WeightMatrix FromBytes(string name, WeightFormat format, int rows, int cols, ReadOnlySpan<byte> stored)
    {
        var bytes = GC.AllocateUninitializedArray<byte>(stored.Length, pinned: true);
        stored.CopyTo(bytes);
        return FromPinned(name, format, rows, cols, bytes);
    }

    static WeightMatrix FromPinned(string name, WeightFormat format, int rows, int cols, byte[] pinned)
        => new(name, format, rows, cols, (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0), pinned.Length, pinned);

    /// <summary>Row <paramref name="row"/> as float32 (the reference the products are tested against).</summary>
    public void DequantizeRow(int row, Span<float> destination)
    {
        if ((uint)row >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(row));
        WeightCodec.Decode(Format, new ReadOnlySpan<byte>(Row(row), (int)RowBytes), destination[..Cols]);
    }

    /// <summary>The whole matrix as float32 [rows·cols].</summary>
    public float[] Dequantize()
    {
        var result = new float[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++) DequantizeRow(r, result.AsSpan(r * Cols, Cols));
        return result;
    }

    /// <summary>
    /// y [n, rows] = x [n, cols] · Wᵀ, split by output rows over <see cref="Models.Cpu.CpuThreads"/>. Integer
    /// formats first quantize each x row to Q8_0 (Q8_0, Q4_0) or Q8_K (K-quants). Uses this thread's
    /// <see cref="WeightProduct"/>; a kernel that owns one can call <see cref="WeightProduct.Run"/> itself. Like every
    /// CpuThreads split, not to be called from inside a CpuThreads job.
    /// </summary>
    public void MatMul(float* x, int n, float* y) => (threadProduct ??= new WeightProduct()).Run(this, x, n, y);

    /// <summary>y [rows] = W · x [cols].</summary>
    public void MatVec(float* x, float* y) => MatMul(x, 1, y);
}
