using Pargs.Models;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// A sibling forward split by rows over two threads (BatchSession.Siblings: rows 0..B/2−1 on the caller, the rest on
/// the CPU worker, each half on its own kernel over its rows of the cache) gives every row the bits of the forward of
/// all rows on one thread: the candidates' hidden states, and the committed cache that the next steps read.
/// </summary>
[Collection(ThreadCountCollection.Name)]
public class RowSplitSiblingsTests
{
    [Theory]
    [InlineData(8, 10)]  // 40 candidates a half: split
    [InlineData(9, 8)]   // halves of 4 and 5 rows (32 and 40 tokens): split
    [InlineData(3, 10)]  // 10 candidates a half: below the split's minimum, one forward
    public void Split_forward_equals_the_one_thread_forward_bit_for_bit(int rows, int k)
    {
        using var _ = no_grad();
        using var rm = TinyModels.RandomRM(TinyModels.LlamaConfig(), seed: 77);
        var (oneThread, oneSplits) = Run(rm.Backbone, rows, k, threads: 1);
        var (twoThreads, twoSplits) = Run(rm.Backbone, rows, k, threads: 2);
        Assert.Equal(0, oneSplits);
        Assert.Equal(rows / 2 * k >= 32 ? 3 : 0, twoSplits); // three sibling forwards, each split
        Assert.Equal(oneThread.Length, twoThreads.Length);
        for (int i = 0; i < oneThread.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(oneThread[i]) == BitConverter.SingleToInt32Bits(twoThreads[i]),
                        $"value {i}: {oneThread[i]:R} on one thread, {twoThreads[i]:R} split");
    }

    /// <summary>
    /// The 15M shape's 16 × 10 candidates (160 tokens: a forward the kernel takes since CpuGemm takes its products; torch's
    /// before) split into halves of 80 candidates, each on its own thread, and keep every row's bits.
    /// </summary>
    [Fact]
    public void The_15M_shapes_candidates_split_and_keep_their_bits()
    {
        using var _ = no_grad();
        using var rm = TinyModels.RandomRM(LlamaDecodeKernelTests.Shape15M(), seed: 15);
        var (oneThread, oneSplits) = Run(rm.Backbone, 16, 10, threads: 1);
        var (twoThreads, twoSplits) = Run(rm.Backbone, 16, 10, threads: 2);
        Assert.Equal(0, oneSplits);
        Assert.Equal(3, twoSplits);
        Assert.Equal(oneThread.Length, twoThreads.Length);
        for (int i = 0; i < oneThread.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(oneThread[i]) == BitConverter.SingleToInt32Bits(twoThreads[i]),
                        $"value {i}: {oneThread[i]:R} on one thread, {twoThreads[i]:R} split");
    }

    [Theory]
    [InlineData("f32", true)]    // a stored float32 checkpoint (what `pargs serve` maps): split
    [InlineData("q8_0", false)]  // integer formats' multi-row kernels are not claimed: one forward
    public void A_stored_float32_model_splits_and_keeps_its_bits(string formatName, bool splits)
    {
        using var _ = no_grad();
        var format = StoredPrecisionTests.Parse(formatName);
        var config = TinyModels.LlamaConfig(vocab: 67) with { HiddenSize = 64, IntermediateSize = 96 };
        using var original = TinyModels.RandomLM(config, seed: 41);
        using var stored = CausalLM.FromStored(config, StoredPrecisionTests.Store(original, format), "(test)");
        var (oneThread, _) = Run(stored.Backbone, 8, 10, threads: 1);
        var (twoThreads, twoSplits) = Run(stored.Backbone, 8, 10, threads: 2);
        Assert.Equal(splits ? 3 : 0, twoSplits);
        Assert.Equal(oneThread.Length, twoThreads.Length);
        for (int i = 0; i < oneThread.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(oneThread[i]) == BitConverter.SingleToInt32Bits(twoThreads[i]),
                        $"value {i}: {oneThread[i]:R} on one thread, {twoThreads[i]:R} on two");
    }

    /// <summary>
    /// Rows of different prompt lengths (left padding), three rounds of siblings + commit + a one-token step; returns
    /// every hidden state read, in order, and how many forwards were split. KeptPanelsTests runs the same rounds on a marked model.
    /// </summary>
    internal static (float[] Values, long Splits) Run(TransformerBackbone backbone, int rows, int k, int threads)
    {
        using var threadCount = CpuThreads.Scoped(threads);
        var random = new Random(5);
        int vocab = (int)backbone.Config.VocabSize;
        var prompts = Enumerable.Range(0, rows).Select(r => Enumerable.Range(0, 3 + r % 5).Select(_ => random.Next(3, vocab)).ToArray()).ToList();
        using var session = new BatchSession(backbone, 0, 16);
        var values = new List<float>();
        using (var scope = NewDisposeScope()) session.AddRows(prompts, 16);
        for (int round = 0; round < 3; round++)
        {
            using var scope = NewDisposeScope();
            var candidates = Enumerable.Range(0, rows * k).Select(_ => (long)random.Next(3, vocab)).ToArray();
            values.AddRange(session.Siblings(tensor(candidates, rows, k)).contiguous().data<float>().ToArray());
            var chosen = Enumerable.Range(0, rows).Select(r => (long)((r + round) % k)).ToArray();
            session.CommitSibling(chosen);
            var next = Enumerable.Range(0, rows).Select(_ => (long)random.Next(3, vocab)).ToArray();
            values.AddRange(session.Step(tensor(next)).contiguous().data<float>().ToArray()); // reads the committed cache
        }
        return (values.ToArray(), session.RowSplitForwards);
    }
}

/// <summary>
/// Tests that count what a given <see cref="CpuThreads.Count"/> does run alone: the count is process-wide, and other test
/// classes set it (CpuThreads.Scoped) while running in parallel, which would change how many forwards split.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ThreadCountCollection
{
    public const string Name = "CPU thread count (runs alone)";
}
