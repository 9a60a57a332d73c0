using Pargs.Models;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// An LM head's kept panels (<see cref="KeptPanels.KeepsHead"/>): a model held for inference only multiplies its head over
/// CpuGemm panels packed once, at any size (the 15M shape's 32,000 × 288 is 9× CpuGemm's 4 MiB bound for other matrices),
/// from <see cref="CpuGemm.KeptMinRows"/> rows. Every row's logits are then <see cref="CpuGemm.Reference"/>'s bits whatever
/// the row count and the thread split; below that row count, and for an unmarked model or a head over
/// <see cref="KeptPanels.MaxHeadBytes"/>, the product is the dot-product blocks' as before, bit for bit.
/// </summary>
[Collection(ThreadCountCollection.Name)]
public unsafe class KeptHeadTests
{
    static float[] Random(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    static void AssertSameBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: value {i} is {actual[i]:R}, expected {expected[i]:R}");
    }

    /// <summary>
    /// A head of 3,700 × 300 (over CpuGemm's 4 MiB: <see cref="CpuGemm.TakesKept"/> refuses it; a last panel of 20 outputs)
    /// through <see cref="MatMulJob"/> as <see cref="CpuLinear"/> runs it, on one thread and two.
    /// </summary>
    [Fact]
    public void A_kept_head_gives_the_summation_orders_bits_at_any_row_count_and_thread_split()
    {
        if (!CpuGemm.Supported) return; // a CPU without AVX2 + FMA (CpuGemmTests.The_kernel_runs_wherever_AVX2_and_FMA_do)
        const int outF = 3700, inF = 300, most = 32;
        Assert.True((long)outF * inF > CpuGemm.MaxMatrixFloats);
        Assert.False(CpuGemm.TakesKept(16, inF, outF)); // a layer's matrix this size would stay on the dot blocks
        var x = Random(most * inF, 1);
        var w = Random(outF * inF, 2);
        var expected = new float[most * outF];
        fixed (float* xp = x, wp = w, ep = expected) CpuGemm.Reference(xp, most, inF, wp, null, ep, outF, 0, outF);
        var kept = new KeptPanels();
        var job = new MatMulJob();
        int previous = CpuThreads.Count;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                CpuThreads.Count = threads;
                foreach (int rows in new[] { CpuGemm.KeptMinRows, 12, 16, 17, most })
                {
                    var y = new float[rows * outF];
                    fixed (float* xp = x, wp = w, yp = y) job.Run(xp, rows, inF, wp, null, yp, outF, kept);
                    AssertSameBits(expected[..(rows * outF)], y, $"{rows} rows, {threads} thread(s)");
                }
                // Below the threshold: the dot-product blocks, exactly as without kept panels.
                foreach (int rows in new[] { 1, 2, CpuGemm.KeptMinRows - 1 })
                {
                    var plain = new float[rows * outF];
                    var y = new float[rows * outF];
                    fixed (float* xp = x, wp = w, pp = plain, yp = y)
                    {
                        job.Run(xp, rows, inF, wp, null, pp, outF);
                        job.Run(xp, rows, inF, wp, null, yp, outF, kept);
                    }
                    AssertSameBits(plain, y, $"{rows} rows (dot blocks), {threads} thread(s)");
                }
            }
        }
        finally { CpuThreads.Count = previous; }
        Assert.Equal(1, kept.Matrices); // packed once, read by every call
        long panelBytes = 4L * ((outF + 31) / 32 * 32 * inF + CpuGemm.AlignFloats);
        Assert.Equal(panelBytes, kept.Bytes);
        Assert.Equal(panelBytes, kept.HeadBytes);
    }

    /// <summary>
    /// <see cref="CausalLM.LogitsFromHidden"/> of a marked model (untied head; and a tied one, whose head is the embedding):
    /// 12 rows give <see cref="CpuGemm.Reference"/>'s bits over the head's weights and the model's kept panels count the head;
    /// one row, an unmarked twin, and a marked model with <see cref="KeptPanels.MaxHeadBytes"/> below its head's size give
    /// the dot path's bits and keep nothing for the head.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_marked_models_logits_come_from_its_kept_head_within_the_budget(bool tied)
    {
        if (!CpuGemm.Supported) return;
        using var _ = no_grad();
        var config = (tied ? TinyModels.Qwen2Config() : TinyModels.LlamaConfig()) with { VocabSize = 1000 };
        Assert.Equal(tied, config.TieWordEmbeddings);
        using var plain = TinyModels.RandomLM(config, seed: 5);
        using var marked = TinyModels.RandomLM(config, seed: 5);
        var kept = KeptPanels.MarkInferenceOnly(marked.Backbone);
        long savedBudget = KeptPanels.MaxHeadBytes;
        int previous = CpuThreads.Count;
        try
        {
            CpuThreads.Count = 1;
            int hidden = config.HiddenSize, vocab = config.VocabSize;
            var head = (marked.named_parameters().Single(p => p.name == (tied ? "model.embed_tokens.weight" : "lm_head.weight")).parameter).data<float>().ToArray();
            foreach (int rows in new[] { 12, 1 })
            {
                var x = Random(rows * hidden, 7 + rows);
                using var states = tensor(x, rows, hidden);
                var reference = new float[rows * vocab];
                fixed (float* xp = x, wp = head, rp = reference) CpuGemm.Reference(xp, rows, hidden, wp, null, rp, vocab, 0, vocab);
                var fromPlain = plain.LogitsFromHidden(states).data<float>().ToArray();
                KeptPanels.MaxHeadBytes = 64L << 20;
                var fromMarked = marked.LogitsFromHidden(states).data<float>().ToArray();
                KeptPanels.MaxHeadBytes = 4L * vocab * hidden - 1; // one byte short of the head
                var overBudget = marked.LogitsFromHidden(states).data<float>().ToArray();
                AssertSameBits(fromPlain, overBudget, $"{rows} rows, head over the budget");
                if (rows == 1) AssertSameBits(fromPlain, fromMarked, "one row: the matrix-vector loop");
                else
                {
                    AssertSameBits(reference, fromMarked, $"{rows} rows over the kept head");
                    // With AVX2 the dot blocks sum in another order than the kept head's GEMM, so the bits show which path ran;
                    // with AVX-512 the two orders give the same bits for this shape, and the kept head's bytes (below) show it.
                    if (CpuGemm.Isa == GemmIsa.Avx2) Assert.Contains(fromPlain.Zip(fromMarked), p => p.First != p.Second);
                }
            }
            Assert.Equal(4L * ((vocab + 31) / 32 * 32 * hidden + CpuGemm.AlignFloats), kept.HeadBytes);
            Assert.Null(KeptPanels.Of(plain.Backbone));
        }
        finally
        {
            KeptPanels.MaxHeadBytes = savedBudget;
            CpuThreads.Count = previous;
            KeptPanels.Release(marked.Backbone);
        }
    }

    [Fact]
    public void The_head_budget_is_off_by_default_and_64_MiB_takes_the_15M_shapes_head_not_a_half_billion_models()
    {
        var kept = new KeptPanels();
        long saved = KeptPanels.MaxHeadBytes;
        try
        {
            if (Environment.GetEnvironmentVariable("PARGS_KEPT_HEAD_MIB") is null)
            {
                Assert.Equal(0, saved); // the default: no head is copied
                Assert.False(kept.KeepsHead(512, 64)); // not even stories260K's 128 KiB
            }
            KeptPanels.MaxHeadBytes = 64L << 20;
            Assert.True(kept.KeepsHead(32000, 288));   // 35.2 MiB
            Assert.False(kept.KeepsHead(151936, 896)); // Qwen2.5-0.5B's tied head, 519 MiB
        }
        finally { KeptPanels.MaxHeadBytes = saved; }
    }
}
