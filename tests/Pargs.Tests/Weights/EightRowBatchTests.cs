using System.Runtime.InteropServices;
using Pargs.Models.Cpu;
using Pargs.Weights;

namespace Pargs.Tests.Weights;

/// <summary>
/// Q8_0 / Q4_0 products of 2–15 activation rows (<see cref="EightRowBatch"/>: eight weight rows per pass, transposed in
/// registers) and the GEMM's transposed panel repack, against a double loop over the dequantized weights and the
/// activation as the product sees it (Q8_0-rounded) at 1e-4 of Σ|w·x|; the kernel on raw bytes against the scalar
/// one-row dot products; and batch invariance: a row's outputs are the same bits however many rows (two or more) share
/// the product, up to the GEMM's sizes, so a reward model's score of a candidate does not change with k.
/// </summary>
public unsafe class EightRowBatchTests
{
    const double Tolerance = 1e-4;

    public static TheoryData<WeightFormat, int, int, int> Cases
    {
        get
        {
            var data = new TheoryData<WeightFormat, int, int, int>();
            foreach (var format in new[] { WeightFormat.Q8_0, WeightFormat.Q4_0 })
                foreach (var (rows, cols) in new[] { (1, 32), (7, 64), (8, 96), (13, 896), (61, 256) })
                    foreach (int threads in new[] { 1, 2 })
                        data.Add(format, rows, cols, threads);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Small_batches_match_a_plain_loop_over_dequantized_rows(WeightFormat format, int rows, int cols, int threads)
    {
        Assert.True(EightRowBatch.Takes(format) || !System.Runtime.Intrinsics.X86.AvxVnni.IsSupported, "this CPU should take the eight-row kernel");
        var random = new Random(rows * 131 + cols + (int)format + 7 * threads);
        var matrix = WeightMatrix.Quantize("blk.0.attn_q.weight", format, QuantizedDotTests.RandomRow(random, rows * cols, 7), rows, cols);
        using var threadCount = CpuThreads.Scoped(threads);
        foreach (int n in new[] { 2, 5, 10, 15 })
        {
            StoredProductReference.Check(matrix, n, random, Tolerance);
            StoredProductReference.Check(matrix.WithRowOrder(Enumerable.Range(0, rows).OrderBy(_ => random.Next()).ToArray()), n, random, Tolerance);
        }
    }

    [Fact]
    public void A_vocabulary_head_shape_splits_over_two_threads_with_tail_rows()
    {
        const int rows = 1021, cols = 128; // not a multiple of 8, of a chunk or of the thread count
        var random = new Random(3);
        using var threadCount = CpuThreads.Scoped(2);
        foreach (var format in new[] { WeightFormat.Q8_0, WeightFormat.Q4_0 })
            StoredProductReference.Check(WeightMatrix.Quantize("token_embd.weight", format, QuantizedDotTests.RandomRow(random, rows * cols, 9), rows, cols), 10, random, Tolerance);
    }

    /// <summary>
    /// Every row of a 40-row product (the GEMM) is computed again inside products of 2, 3, 10 and 15 rows, at every position
    /// and among different neighbours, on 1 and 2 threads: the outputs must be the same bits. A row alone (the one-row
    /// four-row kernel, another float summation order) agrees within the tolerance.
    /// </summary>
    [Theory]
    [InlineData(WeightFormat.Q8_0, 1)]
    [InlineData(WeightFormat.Q8_0, 2)]
    [InlineData(WeightFormat.Q4_0, 1)]
    [InlineData(WeightFormat.Q4_0, 2)]
    public void A_rows_outputs_do_not_depend_on_how_many_rows_share_the_product(WeightFormat format, int threads)
    {
        var random = new Random(17 + (int)format);
        const int rows = 61, cols = 256, all = 40;
        var matrix = WeightMatrix.Quantize("blk.0.ffn_up.weight", format, QuantizedDotTests.RandomRow(random, rows * cols, 5), rows, cols);
        var x = QuantizedDotTests.RandomRow(random, all * cols, 21);
        using var threadCount = CpuThreads.Scoped(threads);
        Assert.True(IntegerGemm.Takes(format, all) || !System.Runtime.Intrinsics.X86.AvxVnni.IsSupported);
        var full = new float[all * rows];
        fixed (float* xp = x)
        fixed (float* fp = full)
            matrix.MatMul(xp, all, fp);
        foreach (int n in new[] { 2, 3, 10, IntegerGemm.MinRows - 1 })
            for (int start = 0; start + n <= all; start += n - 1) // overlapping windows: each row at several positions
            {
                var batch = new float[n * rows];
                fixed (float* xp = x)
                fixed (float* bp = batch)
                    matrix.MatMul(xp + start * cols, n, bp);
                for (int r = 0; r < n; r++)
                    for (int o = 0; o < rows; o++)
                    {
                        float want = full[(start + r) * rows + o], got = batch[r * rows + o];
                        Assert.True(want == got, $"{format}, {n} rows from {start}, row {r} output {o}: {got:R}; in the {all}-row product {want:R}");
                    }
            }
        var alone = new float[rows];
        for (int r = 0; r < all; r += 7)
        {
            fixed (float* xp = x)
            fixed (float* ap = alone)
                matrix.MatVec(xp + r * cols, ap);
            var w = matrix.Dequantize();
            var xSeen = StoredProductReference.AsSeen(format, x.AsSpan(r * cols, cols), cols);
            for (int o = 0; o < rows; o++)
            {
                double scale = 0;
                for (int i = 0; i < cols; i++) scale += Math.Abs((double)w[o * cols + i] * xSeen[i]);
                Assert.True(Math.Abs(alone[o] - full[r * rows + o]) <= 1e-5 * scale, $"{format} row {r} output {o}: alone {alone[o]:R}, batched {full[r * rows + o]:R}");
            }
        }
    }

    [Fact]
    public void The_kernel_gives_the_integers_of_the_scalar_dot_products_on_raw_bytes()
    {
        if (!EightRowBatch.Takes(WeightFormat.Q8_0)) return; // no AVX-VNNI: the one-row path runs there
        var random = new Random(11);
        const int blocks = 9, cols = blocks * 32, n = 3, weightRows = 8;
        byte** rows = stackalloc byte*[EightRowBatch.Rows];
        foreach (var format in new[] { WeightFormat.Q8_0, WeightFormat.Q4_0 })
        {
            int rowBytes = (int)WeightFormats.ByteCount(format, cols, "w");
            // Raw random bytes (any level, −128 included) with a sane half scale per block, as another quantizer may write.
            var weights = new byte[weightRows * rowBytes];
            random.NextBytes(weights);
            int blockBytes = rowBytes / blocks;
            for (int b = 0; b < weightRows * blocks; b++)
                MemoryMarshal.Write(weights.AsSpan(b * blockBytes), Float16.FromFloat((float)(random.NextDouble() * 0.02 + 1e-3)));
            var activations = new byte[n * blocks * Q8_0.BlockBytes];
            for (int r = 0; r < n; r++)
                Q8_0.Quantize(QuantizedDotTests.RandomRow(random, cols, 99 + r), activations.AsSpan(r * blocks * Q8_0.BlockBytes, blocks * Q8_0.BlockBytes));
            // Extreme activation bytes in one block: the offsets and products must hold at the ends of the range.
            for (int j = 0; j < 32; j++) activations[2 + j] = (byte)(sbyte)(j % 2 == 0 ? 127 : -127);
            var scales = new float[n * blocks];
            var offsets = new int[n * blocks * FourRowDot.OffsetInts];
            var sums = new float[n * EightRowBatch.Rows];
            const int valid = 7; // the eighth lane is computed and must not be stored
            var y = new float[n * 10];
            Array.Fill(y, -1f);
            fixed (byte* w = weights)
            fixed (byte* a = activations)
            fixed (float* s = scales, sp = sums, yp = y)
            fixed (int* o = offsets)
            {
                for (int lane = 0; lane < EightRowBatch.Rows; lane++) rows[lane] = w + (7 - lane) * rowBytes; // reversed order
                for (int r = 0; r < n; r++)
                    FourRowDot.Prepare(format, a + r * blocks * Q8_0.BlockBytes, blocks, s + r * blocks, o + r * blocks * FourRowDot.OffsetInts);
                EightRowBatch.Product(format, rows, blocks, a, blocks * Q8_0.BlockBytes, s, o, n, sp, yp, 10, valid);
                for (int r = 0; r < n; r++)
                    for (int lane = 0; lane < 10; lane++)
                    {
                        if (lane >= valid)
                        {
                            Assert.Equal(-1f, y[r * 10 + lane]);
                            continue;
                        }
                        byte* row = rows[lane];
                        byte* ar = a + r * blocks * Q8_0.BlockBytes;
                        double want = format == WeightFormat.Q8_0 ? Q8_0.DotScalar(row, ar, blocks) : Q4_0.DotScalar(row, ar, blocks);
                        double scale = AbsoluteSum(format, row, ar, blocks);
                        Assert.True(Math.Abs(y[r * 10 + lane] - want) <= 1e-5 * scale, $"{format} activation {r} lane {lane}: {y[r * 10 + lane]:R}, scalar {want:R}");
                    }
            }
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

    /// <summary>The activation row as the integer product sees it: through Q8_0 and back.</summary>
}
