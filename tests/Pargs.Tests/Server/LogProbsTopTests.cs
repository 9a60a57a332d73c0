using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>The top tokens a response reports (the decoders' host top-k over a lent span) equal a full sort (larger first, NaN first, ties by lower id).</summary>
public class LogProbsTopTests
{
    static (int, float)[] BySorting(float[] values, int count) => values.Select((v, i) => (i, v))
        .OrderByDescending(x => float.IsNaN(x.v) ? float.PositiveInfinity : x.v).ThenBy(x => x.i).Take(count).ToArray();

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(64)]
    [InlineData(600)]
    public void Top_tokens_equal_a_full_sort(int count)
    {
        var random = new Random(count);
        for (int trial = 0; trial < 20; trial++)
        {
            // Few distinct values (many ties), some −∞ and a NaN now and then.
            var values = Enumerable.Range(0, 512).Select(_ => random.Next(10) switch
            {
                0 => float.NegativeInfinity,
                1 when trial % 4 == 0 => float.NaN,
                var n => -(float)random.Next(6) / 4 - n,
            }).ToArray();
            var got = LogProbsJson.Top(values, count);
            var expected = BySorting(values, count);
            Assert.Equal(expected.Select(e => e.Item1), got.Select(g => g.Token));
            Assert.Equal(expected.Select(e => e.Item2), got.Select(g => g.LogProb));
        }
        Assert.Empty(LogProbsJson.Top([1f, 2f], 0));
    }
}
