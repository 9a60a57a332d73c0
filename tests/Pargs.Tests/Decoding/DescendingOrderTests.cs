using Pargs.Decoding;
using static TorchSharp.torch;

namespace Pargs.Tests.Decoding;

/// <summary>
/// The host radix sort behind nucleus sampling, checked against libtorch's sort (the values in order must be torch's,
/// bit for bit) and against a written reference of the nucleus (the smallest most-likely prefix reaching p).
/// </summary>
public class DescendingOrderTests
{
    [Fact]
    public void Ties_keep_ascending_index_and_signed_zeros_and_infinities_sort_by_value()
    {
        float[] values = [1f, 3f, 3f, float.NegativeInfinity, 3f, 0f, -0f, float.PositiveInfinity, -2.5f];
        var order = new int[values.Length];
        DescendingOrder.Sort(values, order);
        Assert.Equal([7, 1, 2, 4, 0, 5, 6, 8, 3], order);
    }

    [Fact]
    public void NaN_sorts_first_as_in_torch()
    {
        float[] values = [0.5f, float.NaN, -1f];
        var order = new int[3];
        DescendingOrder.Sort(values, order);
        Assert.Equal([1, 0, 2], order);
        var (sorted, _) = tensor(values).sort(-1, descending: true);
        Assert.True(float.IsNaN(sorted.data<float>()[0]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(512)]
    [InlineData(32000)]
    public void Values_in_order_are_torch_sorts_and_the_order_is_a_stable_permutation(int n)
    {
        var rng = new Random(n);
        // Log-probabilities of a peaked distribution: many distinct values, some bit-equal ties among 32k (float32).
        var logits = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 20 - 10) * (rng.Next(4) == 0 ? 0.01f : 1f)).ToArray();
        using var logProbs = tensor(logits).log_softmax(-1);
        var values = logProbs.data<float>().ToArray();
        var order = new int[n];
        DescendingOrder.Sort(values, order);

        var (sorted, _) = logProbs.sort(-1, descending: true);
        var torchValues = sorted.data<float>().ToArray();
        Assert.Equal(torchValues.Select(BitConverter.SingleToInt32Bits), order.Select(i => BitConverter.SingleToInt32Bits(values[i])));
        Assert.Equal(Enumerable.Range(0, n), order.Order());
        for (int i = 1; i < n; i++)
            if (values[order[i]] == values[order[i - 1]]) Assert.True(order[i] > order[i - 1], $"tie at {i} not in index order");
    }

    [Theory]
    [InlineData(0.9)]
    [InlineData(0.999)]
    [InlineData(1.0)]
    public void TopP_is_the_smallest_most_likely_prefix_reaching_p(double p)
    {
        var rng = new Random(3);
        const int rows = 3, vocab = 32000;
        var logits = Enumerable.Range(0, rows * vocab).Select(_ => (float)(rng.NextDouble() * 16 - 8)).ToArray();
        using var logProbs = tensor(logits, rows, vocab).log_softmax(-1);
        var (candLogp, candIds) = DecodingSteps.TopP(logProbs, p);

        // Written reference: every (value, id) by value descending then id ascending, mass summed in that order.
        var all = logProbs.data<float>().ToArray();
        for (int b = 0; b < rows; b++)
        {
            var ranked = Enumerable.Range(0, vocab).Select(v => (Value: all[b * vocab + v], Id: (long)v))
                .OrderByDescending(t => t.Value).ThenBy(t => t.Id).ToArray();
            double mass = 0;
            int n = 0;
            while (n < vocab && (n == 0 || mass < p)) mass += Math.Exp(ranked[n++].Value);
            Assert.Equal(ranked.Take(n).Select(t => t.Id), candIds[b]);
            Assert.Equal(ranked.Take(n).Select(t => t.Value), candLogp[b]);
            if (p < 1) Assert.True(n < vocab / 2, $"row {b}: a nucleus of {n} at p = {p}");
        }
    }
}
