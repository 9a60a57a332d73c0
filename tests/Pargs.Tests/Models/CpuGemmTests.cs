using Pargs.Models.Cpu;

namespace Pargs.Tests.Models;

/// <summary>
/// The outer-product GEMM (<see cref="CpuGemm"/>) and the products of <see cref="CpuOps.MatMul"/> that use it: against a
/// double-precision loop, bit for bit against the one summation order it promises (so a row's result cannot depend on
/// the rows beside it, the panel it falls in or the thread split), on stories260K's and the 15M shape's widths and odd ones.
/// </summary>
// In ThreadCountCollection: KeptPanelsTests sets the process-wide CpuGemm.FixedMinRows, which the threshold checks here read.
[Collection(ThreadCountCollection.Name)]
public unsafe class CpuGemmTests
{
    static float[] Random(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    /// <summary>y = x·wᵀ + bias in double, and Σ|x·w| + |bias| per output (the scale of float32's rounding error).</summary>
    static (double[] Y, double[] Scale) Exact(float[] x, int rows, int inF, float[] w, float[]? bias, int outF)
    {
        var y = new double[rows * outF];
        var scale = new double[rows * outF];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double s = bias?[o] ?? 0, a = Math.Abs(bias?[o] ?? 0);
                for (int i = 0; i < inF; i++)
                {
                    double p = (double)x[r * inF + i] * w[o * inF + i];
                    s += p;
                    a += Math.Abs(p);
                }
                y[r * outF + o] = s;
                scale[r * outF + o] = a;
            }
        return (y, scale);
    }

    public static TheoryData<int, int, int> Shapes => new()
    {
        // (outF, inF, rows): stories260K (64, 172 wide), the 15M shape (288, 768), and odd widths and row counts that
        // leave partial panels, partial 8-row blocks and inF tails of the 8 × 8 pack.
        { 64, 64, 160 }, { 172, 64, 16 }, { 64, 172, 10 }, { 288, 288, 160 }, { 768, 288, 33 }, { 288, 768, 17 },
        { 37, 13, 9 }, { 5, 3, 700 }, { 33, 77, 1 }, { 100, 9, 2 }, { 512, 64, 64 }, { 47, 290, 3 },
        // Row panels of 16: 110 and 160 candidates against the 15M shape's widths, 17 and 31 rows (a partial second panel), 7 outputs.
        { 288, 288, 110 }, { 288, 768, 110 }, { 768, 288, 31 }, { 7, 40, 17 }, { 300, 11, 48 },
    };

    /// <summary>
    /// The instruction sets this CPU runs CpuGemm on (AVX-512 and AVX2 on an AVX-512 machine, AVX2 on the AMD CI machine):
    /// the direct tests check each, on the test's thread (<see cref="CpuGemm.UseIsa"/>). Empty only on a CPU without AVX2 + FMA,
    /// where CpuOps.MatMul never calls CpuGemm (<see cref="The_kernel_runs_wherever_AVX2_and_FMA_do"/> guards against an
    /// empty list hiding a kernel switched off by mistake).
    /// </summary>
    internal static GemmIsa[] Isas() => new[] { GemmIsa.Avx512, GemmIsa.Avx2 }.Where(CpuGemm.IsaRuns).ToArray();

    [Fact]
    public void The_kernel_runs_wherever_AVX2_and_FMA_do()
    {
        bool avx2 = System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported
                    && System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated;
        Assert.Equal(avx2, CpuGemm.IsaRuns(GemmIsa.Avx2));
        if (avx2 && Environment.GetEnvironmentVariable("PARGS_GEMM_AVX2") != "0")
        {
            Assert.True(CpuGemm.Supported, "AVX2 + FMA present but CpuGemm is off");
            Assert.Contains(GemmIsa.Avx2, Isas());
        }
        Assert.Equal(CpuGemm.IsaRuns(GemmIsa.Avx512) ? GemmIsa.Avx512 : CpuGemm.Supported ? GemmIsa.Avx2 : GemmIsa.None, CpuGemm.DefaultIsa);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Multiply_matches_a_double_loop_and_its_own_summation_order_bit_for_bit(int outF, int inF, int rows)
    {
        var x = Random(rows * inF, 1);
        var w = Random(outF * inF, 2);
        var bias = Random(outF, 3);
        // Both packed forms (weights' columns, x's rows), forced, on every instruction set this CPU runs: each must give the
        // one summation order's bits.
        bool? saved = CpuGemm.PackRows;
        try
        {
            foreach (var isa in Isas())
            {
                using var scope = CpuGemm.UseIsa(isa);
                foreach (bool packRows in new[] { false, true })
                {
                    CpuGemm.PackRows = packRows;
                    Check(x, w, bias, outF, inF, rows);
                }
            }
        }
        finally { CpuGemm.PackRows = saved; }
    }

    /// <summary>
    /// The row thresholds of each instruction set, as documented (AVX-512's measured on the Intel VM, AVX2's on the AMD Zen 3),
    /// and <see cref="CpuGemm.SameChoice"/> against <see cref="CpuGemm.Takes"/> / <see cref="CpuGemm.TakesKept"/> on this CPU's
    /// sets: whenever it says two row counts choose alike, every width's choice agrees (else a row split would change bits).
    /// </summary>
    [Fact]
    public void Each_instruction_sets_thresholds_and_SameChoice_agrees_with_Takes()
    {
        foreach (var (inF, avx512, avx2) in new[] { (64, 8, 24), (128, 8, 24), (172, 16, 24), (256, 16, 24), (288, 16, 32), (512, 16, 32), (768, 32, 32), (2048, 32, 32) })
        {
            Assert.Equal(avx512, CpuGemm.MinRows(GemmIsa.Avx512, inF));
            Assert.Equal(avx2, CpuGemm.MinRows(GemmIsa.Avx2, inF));
            Assert.Contains(avx512, CpuGemm.MinRowsChoices(GemmIsa.Avx512));
            Assert.Contains(avx2, CpuGemm.MinRowsChoices(GemmIsa.Avx2));
        }
        if (CpuGemm.FixedMinRows is not null) return; // PARGS_GEMM_MIN_ROWS set for an A/B run: one threshold, not the defaults
        var widths = new[] { 9, 64, 100, 172, 256, 257, 288, 512, 768, 2048 };
        foreach (var isa in Isas())
        {
            using var scope = CpuGemm.UseIsa(isa);
            Assert.Equal(isa == GemmIsa.Avx2 ? 10 : 8, CpuGemm.KeptMinRows);
            for (int fewer = 2; fewer <= 130; fewer++)
                for (int more = fewer; more <= 130; more++)
                {
                    if (!CpuGemm.SameChoice(fewer, more)) continue;
                    foreach (int inF in widths)
                    {
                        if (CpuGemm.Takes(fewer, inF, 256) != CpuGemm.Takes(more, inF, 256)) Assert.Fail($"{isa}: SameChoice({fewer}, {more}) but Takes differs at {inF} inputs");
                        if (CpuGemm.TakesKept(fewer, inF, 256) != CpuGemm.TakesKept(more, inF, 256)) Assert.Fail($"{isa}: SameChoice({fewer}, {more}) but TakesKept differs at {inF} inputs");
                    }
                }
            int first = CpuGemm.MinRows(isa, 288);
            Assert.False(CpuGemm.Takes(first - 1, 288, 288));
            Assert.True(CpuGemm.Takes(first, 288, 288));
            Assert.False(CpuGemm.SameChoice(first - 1, first));
            // A sibling forward splits by rows from 32 candidates a half: no threshold above 32 may stop halves of 32–63
            // (64–127 candidates) from keeping their bits (RowSplitSiblingsTests).
            Assert.True(CpuGemm.SameChoice(32, 127), $"{isa}: halves of 32 candidates would not split");
        }
    }

    static void Check(float[] x, float[] w, float[] bias, int outF, int inF, int rows)
    {
        foreach (var b in new[] { bias, null })
        {
            var (exact, scale) = Exact(x, rows, inF, w, b, outF);
            // A sub-range of outputs, as one thread's share: the floats outside it must stay untouched.
            int lo = outF > 8 ? 4 : 0, hi = outF > 8 ? outF - 3 : outF;
            var y = Enumerable.Repeat(float.NaN, rows * outF).ToArray();
            var canonical = Enumerable.Repeat(float.NaN, rows * outF).ToArray();
            fixed (float* xp = x, wp = w, bp = b, yp = y, cp = canonical)
            {
                CpuGemm.Multiply(xp, rows, inF, wp, bp, yp, outF, lo, hi);
                CpuGemm.Reference(xp, rows, inF, wp, bp, cp, outF, lo, hi);
            }
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < outF; o++)
                {
                    int at = r * outF + o;
                    if (o < lo || o >= hi)
                    {
                        if (!float.IsNaN(y[at])) Assert.Fail($"output ({r}, {o}) outside [{lo}, {hi}) was written");
                        continue;
                    }
                    // (the messages are built only on failure: formatting one per output would be the test's whole cost)
                    if (!(Math.Abs(y[at] - exact[at]) <= 4e-6 * scale[at] + 1e-7)) Assert.Fail($"({r}, {o}): {y[at]} vs exact {exact[at]} (scale {scale[at]})");
                    if (BitConverter.SingleToInt32Bits(canonical[at]) != BitConverter.SingleToInt32Bits(y[at])) Assert.Fail($"({r}, {o}): {y[at]} vs {canonical[at]} in the summation order (rows packed: {CpuGemm.PackRows})");
                }
        }
    }

    [Fact]
    public void A_rows_result_does_not_depend_on_the_rows_beside_it_nor_on_the_thread_split()
    {
        foreach (var isa in Isas())
        foreach (var (outF, inF) in new[] { (172, 64), (288, 288), (61, 19) })
        {
            using var scope = CpuGemm.UseIsa(isa);
            const int most = 700;
            var x = Random(most * inF, 4);
            var w = Random(outF * inF, 5);
            var bias = Random(outF, 6);
            var alone = new float[outF];
            fixed (float* xp = x, wp = w, bp = bias, ap = alone)
            {
                // Row 5 alone, then among 6, 8, 9, 64, 160 and 700 rows, and split at output 4·k as two threads would.
                CpuGemm.Multiply(xp + 5 * inF, 1, inF, wp, bp, ap, outF, 0, outF);
                foreach (int rows in new[] { 6, 7, 8, 9, 11, 64, 160, most })
                {
                    var y = new float[rows * outF];
                    var split = new float[rows * outF];
                    fixed (float* yp = y, sp = split)
                    {
                        CpuGemm.Multiply(xp, rows, inF, wp, bp, yp, outF, 0, outF);
                        int cut = outF / 2 / 4 * 4 + 4;
                        CpuGemm.Multiply(xp, rows, inF, wp, bp, sp, outF, cut, outF);
                        CpuGemm.Multiply(xp, rows, inF, wp, bp, sp, outF, 0, cut);
                    }
                    for (int o = 0; o < outF; o++)
                    {
                        Assert.Equal(BitConverter.SingleToInt32Bits(alone[o]), BitConverter.SingleToInt32Bits(y[5 * outF + o]));
                        Assert.Equal(BitConverter.SingleToInt32Bits(alone[o]), BitConverter.SingleToInt32Bits(split[5 * outF + o]));
                    }
                }
            }
        }
    }

    /// <summary>
    /// CpuOps.MatMul as the decode kernel and CpuLinear call it (through MatMulJob, on one and two threads): every row
    /// count from 1 to 700 within float32 rounding of the double loop; from the GEMM's row threshold on, a row's bits are
    /// the same whatever the row count and thread count.
    /// </summary>
    [Fact]
    public void MatMul_matches_a_double_loop_for_1_to_700_rows_on_one_and_two_threads()
    {
        int previous = CpuThreads.Count;
        try
        {
            foreach (var (outF, inF) in new[] { (64, 64), (172, 64), (64, 172), (288, 288), (768, 288), (288, 768), (45, 23) })
            {
                // 700 rows on the narrow shapes, 64 on the 15M shape's (their 160-row product is checked above): a short test.
                int most = inF * outF <= 172 * 64 ? 700 : 64;
                var x = Random(most * inF, 7);
                var w = Random(outF * inF, 8);
                var bias = Random(outF, 9);
                var (exact, scale) = Exact(x, most, inF, w, bias, outF);
                var job = new MatMulJob();
                float[]? gemmRow0 = null;
                foreach (int threads in new[] { 1, 2 })
                {
                    CpuThreads.Count = threads;
                    foreach (int rows in new[] { 1, 2, 3, 7, 8, 10, 16, 17, 33, 64, 160, most }.Where(r => r <= most).Distinct())
                    {
                        var y = new float[rows * outF];
                        fixed (float* xp = x, wp = w, bp = bias, yp = y) job.Run(xp, rows, inF, wp, bp, yp, outF);
                        for (int at = 0; at < rows * outF; at++)
                            if (!(Math.Abs(y[at] - exact[at]) <= 4e-6 * scale[at] + 1e-7))
                                Assert.Fail($"[{outF} × {inF}], {rows} rows, {threads} threads, output {at}: {y[at]} vs exact {exact[at]}");
                        if (!CpuGemm.Takes(rows, inF, outF)) continue;
                        var row0 = y[..outF];
                        gemmRow0 ??= row0;
                        Assert.Equal(gemmRow0.Select(BitConverter.SingleToInt32Bits), row0.Select(BitConverter.SingleToInt32Bits));
                    }
                }
                Assert.True(!CpuGemm.Supported || gemmRow0 is not null, $"[{outF} × {inF}]: no row count reached the GEMM");
            }
        }
        finally
        {
            CpuThreads.Count = previous;
        }
    }
}
