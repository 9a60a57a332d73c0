using System.Runtime.Intrinsics.X86;
using Pargs.Models.Cpu;
using Pargs.Weights;

namespace Pargs.Tests.Weights;

/// <summary>
/// The prefill GEMMs (<see cref="IntegerGemm"/>, <see cref="HalfGemm"/>) that <see cref="WeightMatrix.MatMul"/> takes
/// for many activation rows, against a plain double loop over the dequantized weights. Tolerance 1e-4 of Σ|w·x|:
/// the same arithmetic in another order. For the integer formats the reference sees the activation rounded
/// through Q8_0 / Q8_K exactly as the product quantizes it, so the only difference left is summation order (and,
/// for K-quants, the float min term d_a·Σq·min applied per sub-block instead of per super-block).
/// Shapes are chosen so panels (8 or 16 weight rows), activation tiles (4 rows) and chunks (256 rows) all have
/// remainders; the q/k projections of a GGUF are views with a row order, so one case runs through a permutation.
/// </summary>
public unsafe class BlockedGemmTests
{
    public static TheoryData<WeightFormat, int> Cases
    {
        get
        {
            var data = new TheoryData<WeightFormat, int>();
            foreach (var format in new[] { WeightFormat.F16, WeightFormat.BF16, WeightFormat.Q8_0, WeightFormat.Q4_0, WeightFormat.Q4_K, WeightFormat.Q5_K, WeightFormat.Q6_K })
                foreach (int threads in new[] { 1, 2 })
                    data.Add(format, threads);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Many_activation_rows_match_a_plain_loop_over_dequantized_rows(WeightFormat format, int threads)
    {
        const int rows = 61, cols = 512;
        var random = new Random((int)format * 31 + threads);
        var matrix = WeightMatrix.Quantize("blk.0.attn_q.weight", format, QuantizedDotTests.RandomRow(random, rows * cols, 50), rows, cols);
        // The GEMM runs where the CPU has what it needs; elsewhere this checks the fallback, which must agree too.
        bool vnni = IntegerDot.UseVnni;
        Assert.True(HalfGemm.Takes(format, 37) || IntegerGemm.Takes(format, 37) || !(vnni && Fma.IsSupported),
            $"{format}: 37 rows should take a blocked GEMM on this CPU");
        using var threadCount = CpuThreads.Scoped(threads);
        StoredProductReference.Check(matrix, 37, random);
        var order = Enumerable.Range(0, rows).OrderBy(_ => random.Next()).ToArray();
        StoredProductReference.Check(matrix.WithRowOrder(order), 21, random);
    }

    [Fact]
    public void More_activation_rows_than_a_chunk_are_all_computed()
    {
        const int rows = 24, cols = 256;
        var random = new Random(5);
        foreach (var format in new[] { WeightFormat.Q8_0, WeightFormat.F16 })
        {
            var matrix = WeightMatrix.Quantize("blk.0.ffn_up.weight", format, QuantizedDotTests.RandomRow(random, rows * cols, 50), rows, cols);
            StoredProductReference.Check(matrix, 301, random);
        }
    }
}
