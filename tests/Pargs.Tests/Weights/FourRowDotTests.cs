using System.Runtime.InteropServices;
using Pargs.Models.Cpu;
using Pargs.Weights;

namespace Pargs.Tests.Weights;

/// <summary>
/// Decode's kernels for one activation row: <see cref="FourRowDot"/> (Q8_0 / Q4_0 weights, four rows per pass, the
/// weights entering vpdpbusd as unsigned bytes with the activation's −k·Σa offsets) and the 512-bit F16 dot product.
/// Each is checked against a double loop over the dequantized weights and the activation as the product sees it
/// (Q8_0-rounded for the integer formats) at 1e-4 of Σ|w·x|, and the integer kernels against the one-row scalar dot
/// products of the same bytes, including bytes the reference quantizer never writes (−128 weights).
/// </summary>
public unsafe class FourRowDotTests
{
    const double Tolerance = 1e-4;

    public static TheoryData<WeightFormat, int, int, int> MatVecCases
    {
        get
        {
            var data = new TheoryData<WeightFormat, int, int, int>();
            foreach (var format in new[] { WeightFormat.Q8_0, WeightFormat.Q4_0 })
                foreach (var (rows, cols) in new[] { (1, 32), (3, 64), (4, 32), (5, 96), (7, 896), (61, 256), (13, 2048), (29, 2048) })
                    foreach (int threads in new[] { 1, 2 })
                        data.Add(format, rows, cols, threads);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(MatVecCases))]
    public void One_activation_row_matches_a_plain_loop_over_dequantized_rows(WeightFormat format, int rows, int cols, int threads)
    {
        Assert.True(FourRowDot.Takes(format) || !System.Runtime.Intrinsics.X86.AvxVnni.IsSupported, "this CPU should take the four-row kernel");
        var random = new Random(rows * 131 + cols + (int)format);
        var matrix = WeightMatrix.Quantize("blk.0.attn_q.weight", format, QuantizedDotTests.RandomRow(random, rows * cols, 7), rows, cols);
        using var threadCount = CpuThreads.Scoped(threads);
        StoredProductReference.Check(matrix, 1, random, Tolerance, matVec: true);
        StoredProductReference.Check(matrix.WithRowOrder(Enumerable.Range(0, rows).OrderBy(_ => random.Next()).ToArray()), 1, random, Tolerance, matVec: true);
    }

    [Theory]
    [InlineData(34L)]      // one Q8_0 block per row
    [InlineData(952L)]     // Qwen2.5-0.5B's 896-wide Q8_0 rows
    [InlineData(1152L)]    // Llama-3.2-1B's 2048-wide Q4_0 rows
    [InlineData(2176L)]    // Llama-3.2-1B's 2048-wide Q8_0 rows
    [InlineData(8704L)]    // its 8192-wide ffn_down rows
    public void The_decode_prefetch_lands_on_the_same_block_whole_passes_ahead(long rowBytes)
    {
        long ahead = FourRowDot.AheadOfRows(rowBytes), pass = 4 * rowBytes;
        Assert.Equal(0, ahead % pass); // the same block of a row a whole number of four-row passes on
        Assert.InRange(ahead, FourRowDot.MinPrefetchAhead, Math.Max(FourRowDot.MinPrefetchAhead + pass - 1, pass));
    }

    [Fact]
    public void The_tied_head_shape_splits_over_two_threads_with_tail_rows()
    {
        // Many rows (a vocabulary head) not a multiple of 4 or of the thread count, on two threads.
        const int rows = 1022, cols = 128;
        var random = new Random(3);
        using var threadCount = CpuThreads.Scoped(2);
        foreach (var format in new[] { WeightFormat.Q8_0, WeightFormat.Q4_0 })
            StoredProductReference.Check(WeightMatrix.Quantize("token_embd.weight", format, QuantizedDotTests.RandomRow(random, rows * cols, 9), rows, cols), 1, random, Tolerance, matVec: true);
    }

    // Products of 2–15 rows take EightRowBatch: their batch invariance is tested in EightRowBatchTests.

    [Fact]
    public void Four_row_kernels_give_the_integers_of_the_scalar_dot_products()
    {
        if (!FourRowDot.Supported) return; // nothing to compare on a CPU without AVX-VNNI: the one-row path runs there
        var random = new Random(11);
        const int blocks = 9, cols = blocks * 32;
        foreach (var format in new[] { WeightFormat.Q8_0, WeightFormat.Q4_0 })
        {
            int rowBytes = (int)WeightFormats.ByteCount(format, cols, "w");
            // Raw random bytes (any level, −128 included) with a sane half scale per block, as another quantizer may write.
            var weights = new byte[4 * rowBytes];
            random.NextBytes(weights);
            int blockBytes = rowBytes / blocks;
            for (int b = 0; b < 4 * blocks; b++)
                MemoryMarshal.Write(weights.AsSpan(b * blockBytes), Float16.FromFloat((float)(random.NextDouble() * 0.02 + 1e-3)));
            var activation = new byte[blocks * Q8_0.BlockBytes];
            Q8_0.Quantize(QuantizedDotTests.RandomRow(random, cols, 99), activation);
            // Extreme activation bytes in one block: the offsets and products must hold at the ends of the range.
            for (int j = 0; j < 32; j++) activation[2 + j] = (byte)(sbyte)(j % 2 == 0 ? 127 : -127);
            var scales = new float[blocks];
            var offsets = new int[blocks * FourRowDot.OffsetInts];
            var y = new float[4];
            fixed (byte* w = weights)
            fixed (byte* a = activation)
            fixed (float* s = scales)
            fixed (int* o = offsets)
            fixed (float* yp = y)
            {
                FourRowDot.Prepare(format, a, blocks, s, o);
                if (format == WeightFormat.Q8_0) FourRowDot.Q8_0Rows(w, w + rowBytes, w + 2 * rowBytes, w + 3 * rowBytes, a, s, o, blocks, yp);
                else FourRowDot.Q4_0Rows(w, w + rowBytes, w + 2 * rowBytes, w + 3 * rowBytes, a, s, o, blocks, yp);
                for (int r = 0; r < 4; r++)
                {
                    byte* row = w + r * rowBytes;
                    double want = format == WeightFormat.Q8_0 ? Q8_0.DotScalar(row, a, blocks) : Q4_0.DotScalar(row, a, blocks);
                    double scale = AbsoluteSum(format, row, a, blocks);
                    Assert.True(Math.Abs(y[r] - want) <= 1e-5 * scale, $"{format} row {r}: four-row {y[r]:R}, scalar {want:R} (Σ|w·a| {scale:E3})");
                }
            }
        }
    }

    [Fact]
    public void The_eight_row_Q8_0_kernel_gives_the_integers_of_the_scalar_dot_products()
    {
        if (!FourRowDot.Supported) return; // nothing to compare on a CPU without AVX-VNNI
        var random = new Random(12);
        const int blocks = 9, cols = blocks * 32, rows = 8;
        int rowBytes = (int)WeightFormats.ByteCount(WeightFormat.Q8_0, cols, "w");
        // Raw random bytes (−128 included) with a sane half scale per block; rows padded apart, as a caller's stride may be.
        long stride = rowBytes + 34;
        var weights = new byte[rows * stride];
        random.NextBytes(weights);
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < blocks; b++)
                MemoryMarshal.Write(weights.AsSpan((int)(r * stride) + b * Q8_0.BlockBytes), Float16.FromFloat((float)(random.NextDouble() * 0.02 + 1e-3)));
        var activation = new byte[blocks * Q8_0.BlockBytes];
        Q8_0.Quantize(QuantizedDotTests.RandomRow(random, cols, 99), activation);
        for (int j = 0; j < 32; j++) activation[2 + j] = (byte)(sbyte)(j % 2 == 0 ? 127 : -127);
        var scales = new float[blocks];
        var offsets = new int[blocks * FourRowDot.OffsetInts];
        var y = new float[rows];
        fixed (byte* w = weights)
        fixed (byte* a = activation)
        fixed (float* s = scales)
        fixed (int* o = offsets)
        fixed (float* yp = y)
        {
            FourRowDot.Prepare(WeightFormat.Q8_0, a, blocks, s, o);
            FourRowDot.Q8_0EightRows(w, stride, a, s, o, blocks, yp, FourRowDot.AheadOfRows(stride, 8));
            for (int r = 0; r < rows; r++)
            {
                byte* row = w + r * stride;
                double want = Q8_0.DotScalar(row, a, blocks), scale = AbsoluteSum(WeightFormat.Q8_0, row, a, blocks);
                Assert.True(Math.Abs(y[r] - want) <= 1e-5 * scale, $"row {r}: eight-row {y[r]:R}, scalar {want:R} (Σ|w·a| {scale:E3})");
            }
        }
        // Whole eight-row passes, at least MinPrefetchAhead bytes, for the real row widths.
        foreach (long bytes in new long[] { 34, 952, 2176, 8704 })
        {
            long ahead = FourRowDot.AheadOfRows(bytes, 8);
            Assert.Equal(0, ahead % (8 * bytes));
            Assert.InRange(ahead, FourRowDot.MinPrefetchAhead, Math.Max(FourRowDot.MinPrefetchAhead + 8 * bytes - 1, 8 * bytes));
        }
    }

    [Theory]
    [InlineData(32)]
    [InlineData(45)]
    [InlineData(896)]
    [InlineData(4875)]
    public void F16_dot_on_512_and_256_bit_vectors_matches_the_converted_row(int cols)
    {
        var random = new Random(cols + 5);
        var w = new ushort[cols];
        var x = new float[cols];
        for (int i = 0; i < cols; i++)
        {
            w[i] = Float16.FromFloat((float)(BlockFormatTests.Normal(random) * 0.05));
            x[i] = (float)BlockFormatTests.Normal(random);
        }
        if (cols > 64)
        {
            w[40] = 0x0003;              // a subnormal in the second 32-value chunk: that chunk takes the exact path
            w[cols - 40] = 0x83FF;       // a negative subnormal near the end
            w[cols / 2] = 0x8000;        // −0 stays on the fast path
        }
        double want = 0, scale = 0;
        for (int i = 0; i < cols; i++)
        {
            double product = (double)(float)BitConverter.UInt16BitsToHalf(w[i]) * x[i];
            want += product;
            scale += Math.Abs(product);
        }
        bool previous = Float16.Only256Bit;
        try
        {
            fixed (ushort* wp = w)
            fixed (float* xp = x)
                foreach (bool only256 in new[] { false, true })
                {
                    Float16.Only256Bit = only256;
                    double got = Float16.Dot(wp, xp, cols);
                    Assert.True(Math.Abs(got - want) <= Tolerance * scale, $"cols={cols} only256={only256}: got {got:R}, reference {want:R}");
                }
        }
        finally
        {
            Float16.Only256Bit = previous;
        }
    }

    [Theory]
    [InlineData(32)]
    [InlineData(70)]
    [InlineData(4875)]
    public void Bf16_dot_on_512_and_256_bit_vectors_matches_the_converted_row(int cols)
    {
        var random = new Random(cols + 9);
        var w = new ushort[cols];
        var x = new float[cols];
        for (int i = 0; i < cols; i++)
        {
            w[i] = BFloat16.FromFloat((float)(BlockFormatTests.Normal(random) * 0.05));
            x[i] = (float)BlockFormatTests.Normal(random);
        }
        double want = 0, scale = 0;
        for (int i = 0; i < cols; i++)
        {
            double product = (double)BFloat16.ToFloat(w[i]) * x[i];
            want += product;
            scale += Math.Abs(product);
        }
        bool previous = Float16.Only256Bit;
        try
        {
            fixed (ushort* wp = w)
            fixed (float* xp = x)
                foreach (bool only256 in new[] { false, true })
                {
                    Float16.Only256Bit = only256;
                    double got = BFloat16.Dot(wp, xp, cols);
                    Assert.True(Math.Abs(got - want) <= Tolerance * scale, $"cols={cols} only256={only256}: got {got:R}, reference {want:R}");
                }
        }
        finally
        {
            Float16.Only256Bit = previous;
        }
    }

    [Fact]
    public void F16_dot_keeps_infinities_and_nan_on_the_wide_path()
    {
        var w = new ushort[64];
        var x = new float[64];
        for (int i = 0; i < 64; i++) { w[i] = 0x3C00; x[i] = 1; } // 1.0
        w[50] = 0x7C00; // +inf
        fixed (ushort* wp = w)
        fixed (float* xp = x)
        {
            Assert.Equal(float.PositiveInfinity, Float16.Dot(wp, xp, 64));
            w[50] = 0x7E00; // NaN
            Assert.True(float.IsNaN(Float16.Dot(wp, xp, 64)));
        }
    }

    static double AbsoluteSum(WeightFormat format, byte* row, byte* a, int blocks)
    {
        var wf = new float[blocks * 32];
        var af = new float[blocks * 32];
        WeightCodec.Decode(format, new ReadOnlySpan<byte>(row, (int)WeightFormats.ByteCount(format, blocks * 32, "w")), wf);
        WeightCodec.Decode(WeightFormat.Q8_0, new ReadOnlySpan<byte>(a, blocks * Q8_0.BlockBytes), af);
        double sum = 0;
        for (int i = 0; i < wf.Length; i++) sum += Math.Abs((double)wf[i] * af[i]);
        return sum;
    }
}
