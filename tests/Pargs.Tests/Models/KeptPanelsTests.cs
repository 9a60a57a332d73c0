using Pargs.Rewards;
using Pargs.Models;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// <see cref="KeptPanels"/>: CpuGemm's weight panels packed once for a model held for inference only. The same panels give
/// the same bits: products against <see cref="CpuGemm.Reference"/> over whole and split output ranges (a thread's chunk need
/// not start at a panel's first output), and a marked model's forwards (siblings on one thread and split by rows over two,
/// their commits and steps) against an unmarked twin's, bit for bit. A marked model whose weights change in place is
/// refused, not multiplied with stale panels.
/// </summary>
[Collection(ThreadCountCollection.Name)]
public unsafe class KeptPanelsTests
{
    static float[] Random(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    [Theory]
    [InlineData(288, 288, 110)]
    [InlineData(768, 288, 12)]
    [InlineData(288, 768, 17)]
    [InlineData(64, 64, 8)]
    [InlineData(37, 13, 9)]   // a partial last panel, an inF tail of the 8 × 8 pack
    [InlineData(100, 9, 3)]
    [InlineData(70, 20, 10)]  // AVX2: a 6-row block and a 4-row one
    [InlineData(45, 30, 7)]   // AVX2: a 6-row block and a single row; a half panel with no outputs
    public void Kept_panels_give_the_one_summation_orders_bits_over_any_output_range(int outF, int inF, int rows)
    {
        foreach (var isa in CpuGemmTests.Isas()) // each instruction set this CPU runs (none: CpuOps.MatMul never calls CpuGemm)
        {
            using var scope = CpuGemm.UseIsa(isa);
            KeptPanelsGiveTheSummationOrdersBits(outF, inF, rows);
        }
    }

    static void KeptPanelsGiveTheSummationOrdersBits(int outF, int inF, int rows)
    {
        var x = Random(rows * inF, 1);
        var w = Random(outF * inF, 2);
        var bias = Random(outF, 3);
        var kept = new KeptPanels();
        var expected = new float[rows * outF];
        var actual = new float[rows * outF];
        fixed (float* xp = x, wp = w, bp = bias, ep = expected, ap = actual)
        {
            foreach (var withBias in new[] { false, true })
            {
                float* b = withBias ? bp : null;
                CpuGemm.Reference(xp, rows, inF, wp, b, ep, outF, 0, outF);
                // The whole range; then ranges as a split product's chunks cut them (multiples of 4, not of 32), in an order
                // that packs the matrix inside a chunk's call.
                var cuts = new List<(int Lo, int Hi)> { (0, outF) };
                for (int lo = outF / 2 / 4 * 4; lo < outF; lo += 20) cuts.Add((lo, Math.Min(outF, lo + 20)));
                for (int lo = 0; lo < outF / 2 / 4 * 4; lo += 20) cuts.Add((lo, Math.Min(outF / 2 / 4 * 4, lo + 20)));
                foreach (var (lo, hi) in cuts)
                {
                    Array.Fill(actual, float.NaN);
                    CpuGemm.Multiply(xp, rows, inF, wp, b, ap, outF, lo, hi, kept);
                    for (int r = 0; r < rows; r++)
                        for (int o = 0; o < outF; o++)
                        {
                            float got = actual[r * outF + o];
                            if (o < lo || o >= hi) Assert.True(float.IsNaN(got), $"[{lo}, {hi}): output {o} outside the range was written");
                            else Assert.True(BitConverter.SingleToInt32Bits(got) == BitConverter.SingleToInt32Bits(expected[r * outF + o]),
                                             $"[{lo}, {hi}) bias {withBias}: y[{r}, {o}] = {got:R}, the summation order gives {expected[r * outF + o]:R}");
                        }
                }
            }
        }
        Assert.Equal(1, kept.Matrices); // packed once, read by every call
        Assert.Equal(4L * (((outF + 31) / 32 * 32) * inF + CpuGemm.AlignFloats), kept.Bytes);
    }

    [Fact]
    public void Weights_changed_after_their_panels_were_kept_are_refused()
    {
        if (!CpuGemm.Supported) return; // a CPU without AVX2 + FMA (CpuGemmTests.The_kernel_runs_wherever_AVX2_and_FMA_do)
        const int outF = 64, inF = 64, rows = 16;
        var x = Random(rows * inF, 1);
        var w = Random(outF * inF, 2);
        var y = new float[rows * outF];
        var kept = new KeptPanels();
        fixed (float* xp = x, wp = w, yp = y)
        {
            float* xq = xp, wq = wp, yq = yp;
            CpuGemm.Multiply(xq, rows, inF, wq, null, yq, outF, 0, outF, kept);
            for (int i = 0; i < w.Length; i++) w[i] *= 0.5f; // an optimizer step, in place
            var error = Assert.Throws<InvalidOperationException>(() => CpuGemm.Multiply(xq, rows, inF, wq, null, yq, outF, 0, outF, kept));
            Assert.Contains("inference-only", error.Message);
        }
    }

    /// <summary>
    /// The 15M shape's 16 × 10 reward candidates (and a tiny Llama's 8 × 10), three rounds of siblings, commit and a step of
    /// every row, on one thread and split by rows over two: a model marked inference-only gives its unmarked twin's bits, and
    /// its kernel read kept panels (they were packed). Both take CpuGemm from 8 rows here (PARGS_GEMM_MIN_ROWS's setting), so
    /// every product runs the same kernel in both and only the panels' origin differs: packed per call or kept.
    /// </summary>
    [Theory]
    [InlineData("15m", 16, 1)]
    [InlineData("15m", 16, 2)]
    [InlineData("tiny", 8, 2)]
    public void A_marked_models_forwards_equal_its_unmarked_twins_bit_for_bit(string shape, int rows, int threads)
    {
        if (!CpuGemm.Supported) return; // a CPU without AVX2 + FMA (CpuGemmTests.The_kernel_runs_wherever_AVX2_and_FMA_do)
        int? savedMin = CpuGemm.FixedMinRows;
        CpuGemm.FixedMinRows = 8;
        try
        {
            var (expected, actual, kept, splits) = Twins(shape, rows, threads);
            Assert.Equal(threads == 2 ? 3 : 0, splits);
            Assert.True(kept >= 7, $"{kept} matrices kept"); // a layer's q, k, v, o, gate, up, down at least
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                            $"value {i}: {expected[i]:R} unmarked, {actual[i]:R} with kept panels");
        }
        finally { CpuGemm.FixedMinRows = savedMin; }
    }

    /// <summary>
    /// With the default thresholds a marked model's 8–31-row products (a 16-stream step's LM rows) take CpuGemm over its
    /// kept panels where an unmarked one's 288- and 768-wide products stay on the dot-product blocks: another summation
    /// order, so the same numbers up to float32 rounding (as between any two kernels). The first candidates' forward (160
    /// tokens over the prompts' cache: CpuGemm in both) is still bit for bit; later ones read keys/values the steps wrote.
    /// </summary>
    [Fact]
    public void With_the_default_thresholds_a_marked_models_few_row_steps_agree_to_rounding()
    {
        if (!CpuGemm.Supported) return; // a CPU without AVX2 + FMA (CpuGemmTests.The_kernel_runs_wherever_AVX2_and_FMA_do)
        var (expected, actual, _, _) = Twins("15m", 16, 1);
        const int hidden = 288, rows = 16, k = 10;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (i < rows * k * hidden)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]), $"value {i}: {expected[i]:R} unmarked, {actual[i]:R} kept");
            else worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        }
        Assert.InRange(worst, 0, 1e-4);
    }

    /// <summary>An unmarked reward model and its marked twin (same seed) through <see cref="Run"/>: their values, the matrices kept, the split forwards.</summary>
    /// <summary>
    /// A reward model decoded in its stored precision (as pargs serve loads one: `RewardModel.LoadForInference`, the
    /// shipped partial RM's float32 safetensors mapped, no torch parameters) and marked inference-only keeps its panels too,
    /// and gives its unmarked twin's bits. Before, its kernel read the stored matrices without the mark and packed every
    /// product's panels per call (a tenth of pargs serve's reward worker on stories260K).
    /// </summary>
    [Fact]
    public void A_marked_stored_precision_reward_model_keeps_its_panels_and_its_twins_bits()
    {
        if (!CpuGemm.Supported) return;
        int? savedMin = CpuGemm.FixedMinRows;
        CpuGemm.FixedMinRows = 8;
        using var _ = no_grad();
        using var plain = RewardModel.LoadForInference(TestPaths.ShippedPartialRm);
        using var marked = RewardModel.LoadForInference(TestPaths.ShippedPartialRm);
        Assert.NotNull(marked.StoredWeights);
        var kept = KeptPanels.MarkInferenceOnly(marked.Backbone);
        try
        {
            var (expected, _) = RowSplitSiblingsTests.Run(plain.Backbone, 16, 10, 1);
            var (actual, _) = RowSplitSiblingsTests.Run(marked.Backbone, 16, 10, 1);
            Assert.True(kept.Matrices >= 7, $"{kept.Matrices} matrices kept");
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                            $"value {i}: {expected[i]:R} unmarked, {actual[i]:R} with kept panels");
        }
        finally
        {
            KeptPanels.Release(marked.Backbone);
            CpuGemm.FixedMinRows = savedMin;
        }
    }

    static (float[] Expected, float[] Actual, int Kept, long Splits) Twins(string shape, int rows, int threads)
    {
        using var _ = no_grad();
        var config = shape == "15m" ? LlamaDecodeKernelTests.Shape15M() : TinyModels.LlamaConfig();
        using var plain = TinyModels.RandomRM(config, seed: 15);
        using var marked = TinyModels.RandomRM(config, seed: 15);
        var kept = KeptPanels.MarkInferenceOnly(marked.Backbone);
        try
        {
            var (expected, splitsPlain) = RowSplitSiblingsTests.Run(plain.Backbone, rows, 10, threads);
            var (actual, splitsMarked) = RowSplitSiblingsTests.Run(marked.Backbone, rows, 10, threads);
            Assert.Equal(splitsPlain, splitsMarked);
            return (expected, actual, kept.Matrices, splitsMarked);
        }
        finally
        {
            KeptPanels.Release(marked.Backbone);
            Assert.Null(KeptPanels.Of(marked.Backbone));
        }
    }
}
