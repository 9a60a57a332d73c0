using Pargs.Decoding;
using Pargs.Engine;
using static TorchSharp.torch;

namespace Pargs.Tests.Decoding;

/// <summary>The host steps of the torch-free engine (log-softmax, top-k, top-p) against torch's on the same numbers.</summary>
public class HostDecodingStepsTests
{
    static float[] RandomLogits(int rows, int vocab, int seed, float scale)
    {
        var random = new Random(seed);
        var logits = new float[rows * vocab];
        for (int i = 0; i < logits.Length; i++) logits[i] = (float)((random.NextDouble() * 2 - 1) * scale);
        return logits;
    }

    [Theory]
    [InlineData(1f)]
    [InlineData(30f)] // peaked: log-probs down to about −60
    public void Host_log_softmax_is_within_a_float_rounding_of_torchs(float scale)
    {
        const int rows = 3, vocab = 5000;
        var logits = RandomLogits(rows, vocab, seed: 3, scale);
        using var expectedTensor = tensor(logits, rows, vocab).log_softmax(-1);
        var expected = expectedTensor.data<float>().ToArray();
        var actual = (float[])logits.Clone();
        DecodingSteps.LogSoftmaxInPlace(actual, rows, vocab);
        for (int i = 0; i < actual.Length; i++)
        {
            // Both are x − max − log Σ: they differ by the rounding of the log-sum (torch sums in float32, here in double).
            float allowed = 1e-6f * Math.Max(1f, Math.Abs(expected[i]));
            Assert.True(Math.Abs(actual[i] - expected[i]) <= allowed, $"[{i}]: host {actual[i]} torch {expected[i]}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(100)] // past 64: the radix-sort branch
    public void Host_top_k_is_torchs_top_k(int k)
    {
        const int rows = 4, vocab = 3000;
        var values = RandomLogits(rows, vocab, seed: 11, 5f);
        var (expectedValues, expectedIds) = DecodingSteps.TopK(tensor(values, rows, vocab), k);
        var topValues = new float[rows * k];
        var topIds = new long[rows * k];
        DecodingSteps.TopK(values, rows, vocab, k, topValues, topIds);
        Assert.Equal(expectedValues.data<float>().ToArray(), topValues);
        Assert.Equal(expectedIds.data<long>().ToArray(), topIds);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)] // the rows split over two CpuThreads
    public void Tensor_next_tokens_top_k_rows_are_torchs_top_k(int threads)
    {
        using var threadCount = Pargs.Models.Cpu.CpuThreads.Scoped(threads);
        const int rows = 13, vocab = 4000, k = 10;
        var logProbs = RandomLogits(rows, vocab, seed: 17, 6f);
        DecodingSteps.LogSoftmaxInPlace(logProbs, rows, vocab);
        using var asTensor = tensor(logProbs, rows, vocab);
        var (expectedValues, expectedIds) = asTensor.topk(k, dim: -1, largest: true, sorted: true);
        var (values, ids) = new NextTokens(asTensor).TopKRows(k);
        Assert.Equal(expectedValues.data<float>().ToArray(), values);
        Assert.Equal(expectedIds.data<long>().ToArray(), ids);
        // A non-contiguous [B, V] (a transposed view) goes to torch's topk: the same answer.
        using var transposed = asTensor.t().contiguous().t();
        Assert.False(transposed.is_contiguous());
        var (viewValues, viewIds) = new NextTokens(transposed).TopKRows(k);
        Assert.Equal(values, viewValues);
        Assert.Equal(ids, viewIds);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(10)]
    public void Host_top_k_over_a_long_row_with_ties_and_a_nan_is_a_stable_sort_by_value(int k)
    {
        // Eight-token blocks are skipped once the list is full: a tie or a NaN late in the row, in any lane, must still enter.
        const int vocab = 3001;
        var random = new Random(23);
        var row = Enumerable.Range(0, vocab).Select(_ => (float)Math.Round(random.NextDouble() * 40, 0)).ToArray(); // many ties
        row[1237] = float.NaN;
        row[2999] = 41f; // the largest number, in the last (partial) block
        var expected = Enumerable.Range(0, vocab).OrderByDescending(v => float.IsNaN(row[v]) ? float.PositiveInfinity : row[v]).ThenBy(v => v).Take(k).ToArray();
        var top = new float[k];
        var ids = new long[k];
        DecodingSteps.TopK(row, 1, vocab, k, top, ids);
        Assert.Equal(expected.Select(v => (long)v).ToArray(), ids);
    }

    [Fact]
    public void Host_top_k_keeps_the_lower_id_first_on_ties_and_puts_nan_first()
    {
        var values = new[] { 1f, 3f, 3f, 2f, float.NaN, 3f };
        var top = new float[4];
        var ids = new long[4];
        DecodingSteps.TopK(values, 1, 6, 4, top, ids);
        Assert.Equal(new long[] { 4, 1, 2, 5 }, ids);
    }

    [Fact]
    public void Host_next_tokens_answer_as_tensor_next_tokens()
    {
        const int rows = 2, vocab = 2000;
        var logProbs = RandomLogits(rows, vocab, seed: 5, 8f);
        DecodingSteps.LogSoftmaxInPlace(logProbs, rows, vocab);
        using var asTensor = tensor(logProbs, rows, vocab);
        var host = new NextTokens(logProbs, rows, vocab);
        var reference = new NextTokens(asTensor);
        Assert.Equal(reference.TopKRows(7).Ids, host.TopKRows(7).Ids);
        Assert.Equal(reference.TopKRows(7).LogProbs, host.TopKRows(7).LogProbs);
        foreach (double p in new[] { 0.05, 0.5, 0.95 })
        {
            var (expectedLogp, expectedIds) = reference.TopP(p);
            var (actualLogp, actualIds) = host.TopP(p);
            Assert.Equal(expectedIds, actualIds);
            Assert.Equal(expectedLogp, actualLogp);
        }
        Assert.Equal(logProbs, host.LogProbs.data<float>().ToArray()); // made on demand, for a method that reads the whole row
    }
}
