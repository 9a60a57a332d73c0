using Pargs.Models.Cpu;
using Pargs.Weights;

namespace Pargs.Tests.Weights;

/// <summary>
/// <see cref="WeightMatrix"/> products against a plain loop over the dequantized rows, on one and two
/// threads, and <see cref="MappedFile"/> views: bounds, errors, products straight out of a mapped file.
/// </summary>
public unsafe class WeightMatrixTests
{
    public static TheoryData<WeightFormat, int> Cases
    {
        get
        {
            var data = new TheoryData<WeightFormat, int>();
            foreach (var format in new[] { WeightFormat.F32, WeightFormat.F16, WeightFormat.BF16, WeightFormat.Q8_0, WeightFormat.Q4_0, WeightFormat.Q4_K, WeightFormat.Q5_K, WeightFormat.Q6_K })
                foreach (int threads in new[] { 1, 2 })
                    data.Add(format, threads);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatMul_matches_a_plain_loop_over_dequantized_rows(WeightFormat format, int threads)
    {
        const int rows = 61, cols = 512; // 61 rows: thread chunks and 4-row blocks do not divide evenly
        var random = new Random((int)format * 10 + threads);
        var values = QuantizedDotTests.RandomRow(random, rows * cols, 50);
        var matrix = WeightMatrix.Quantize("test.weight", format, values, rows, cols);
        using var threadCount = CpuThreads.Scoped(threads);
        // A row-ordered view (GGUF's q/k projections) too: a one-row product reads it in stored order and scatters
        // the outputs, which must land on the logical rows whichever thread's chunk computes them.
        var ordered = matrix.WithRowOrder(Enumerable.Range(0, rows).OrderBy(_ => random.Next()).ToArray());
        foreach (int n in new[] { 1, 2, 3, 10 })
        {
            StoredProductReference.Check(matrix, n, random, context: $", {threads} thread(s)");
            StoredProductReference.Check(ordered, n, random, context: $", row-ordered, {threads} thread(s)");
        }
    }

    [Fact]
    public void A_matrix_over_truncated_data_or_partial_blocks_is_an_error_naming_the_tensor()
    {
        var bytes = GC.AllocateArray<byte>(10 * Q4_K.BlockBytes - 1, pinned: true);
        byte* p = (byte*)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(bytes, 0);
        {
            var e = Assert.Throws<PargsException>(() => new WeightMatrix("blk.0.ffn_down.weight", WeightFormat.Q4_K, 10, 256, p, bytes.Length, null));
            Assert.Contains("blk.0.ffn_down.weight", e.Message);
            e = Assert.Throws<PargsException>(() => new WeightMatrix("blk.1.attn_k.weight", WeightFormat.Q8_0, 1, 48, p, bytes.Length, null));
            Assert.Contains("blk.1.attn_k.weight", e.Message);
            Assert.Throws<PargsException>(() => new WeightMatrix("x", WeightFormat.Q8_K, 1, 256, p, bytes.Length, null));
        }
    }

    [Fact]
    public void Mapped_file_views_compute_in_place_and_are_bounds_checked()
    {
        using var dir = new TempDir();
        const int rows = 16, cols = 256, offset = 96; // GGUF-like: tensor data after a header
        var random = new Random(3);
        var values = QuantizedDotTests.RandomRow(random, rows * cols, 70);
        var reference = WeightMatrix.Quantize("blk.0.ffn_up.weight", WeightFormat.Q4_K, values, rows, cols);
        var stored = new ReadOnlySpan<byte>(reference.Data, (int)reference.ByteLength).ToArray();
        string path = dir.File("model.bin");
        File.WriteAllBytes(path, new byte[offset].Concat(stored).ToArray());

        using (var file = MappedFile.Open(path))
        {
            Assert.Equal(offset + stored.Length, file.Length);
            var mapped = file.Matrix("blk.0.ffn_up.weight", WeightFormat.Q4_K, rows, cols, offset);
            Assert.Same(file, mapped.Owner);
            Assert.Equal(reference.Dequantize(), mapped.Dequantize());
            var x = QuantizedDotTests.RandomRow(random, cols, 80);
            float[] yMapped = new float[rows], yOwned = new float[rows];
            fixed (float* xp = x)
            fixed (float* a = yMapped)
            fixed (float* b = yOwned)
            {
                mapped.MatVec(xp, a);
                reference.MatVec(xp, b);
            }
            Assert.Equal(yOwned, yMapped);

            var e = Assert.Throws<PargsException>(() => file.Matrix("blk.0.ffn_gate.weight", WeightFormat.Q4_K, rows + 1, cols, offset));
            Assert.Contains("blk.0.ffn_gate.weight", e.Message);
            Assert.Contains(path, e.Message);
            Assert.Throws<PargsException>(() => file.Bytes(file.Length - 4, 8, "header"));
            Assert.Throws<PargsException>(() => file.Bytes(-1, 4, "header"));
            Assert.Equal(stored[..4], file.Bytes(offset, 4, "first block").ToArray());
            var copied = WeightMatrix.FromBytes("blk.0.ffn_up.weight", WeightFormat.Q4_K, rows, cols, file.Bytes(offset, stored.Length, "tensor"));
            Assert.Equal(reference.Dequantize(), copied.Dequantize());
        }

        string empty = dir.File("empty.gguf");
        File.WriteAllBytes(empty, Array.Empty<byte>());
        Assert.Contains("empty", Assert.Throws<PargsException>(() => MappedFile.Open(empty)).Message);
        Assert.Contains("missing.gguf", Assert.Throws<PargsException>(() => MappedFile.Open(dir.File("missing.gguf"))).Message);
    }

    [Fact]
    public void Tensors_of_a_real_gguf_file_map_to_the_values_the_gguf_reader_loads()
    {
        var gguf = Pargs.Checkpoints.GgufFile.Read(TestPaths.Stories260KGguf);
        using var file = MappedFile.Open(TestPaths.Stories260KGguf);
        int checkedTensors = 0;
        foreach (var info in gguf.Tensors)
        {
            var mapped = file.Matrix(info);
            using var loaded = gguf.ReadTensor(info);
            Assert.Equal(loaded.data<float>().ToArray(), mapped.Dequantize());
            checkedTensors++;
        }
        Assert.True(checkedTensors > 10);
    }
}
