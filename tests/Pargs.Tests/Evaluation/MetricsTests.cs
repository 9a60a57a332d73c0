using Pargs.Evaluation;

namespace Pargs.Tests.Evaluation;

public class MetricsTests
{
    [Fact]
    public void MeanWithErrorUsesTheSampleStandardDeviation()
    {
        var m = MeanWithError.Of(new double[] { 1, 2, 3, 4 });
        Assert.Equal(2.5, m.Mean, 12);
        Assert.Equal(Math.Sqrt(5.0 / 3.0), m.StandardDeviation, 12);       // Σ(x-2.5)² = 5, /(n-1)
        Assert.Equal(Math.Sqrt(5.0 / 3.0) / 2.0, m.StandardError, 12);     // / √4
        Assert.Equal(4, m.Count);
        Assert.Equal("2.500 ± 0.645", m.Format());
    }

    [Fact]
    public void MeanWithErrorEdgeCasesAreNaN()
    {
        var one = MeanWithError.Of(new double[] { 7 });
        Assert.Equal(7, one.Mean);
        Assert.True(double.IsNaN(one.StandardDeviation) && double.IsNaN(one.StandardError));
        Assert.Equal("7.000 ± –", one.Format());
        var none = MeanWithError.Of(Array.Empty<double>());
        Assert.True(double.IsNaN(none.Mean));
        Assert.Equal(0, none.Count);
    }

    [Fact]
    public void WinRateCountsWinsTiesAndLosses()
    {
        var candidate = new Dictionary<string, double> { ["a"] = 1.0, ["b"] = 0.5, ["c"] = 0.2, ["d"] = 0.3 };
        var baseline = new Dictionary<string, double> { ["a"] = 0.5, ["b"] = 0.5, ["c"] = 0.7, ["d"] = 0.3 + 1e-12 };
        var result = WinRate.Compare(candidate, baseline);
        Assert.Equal(new WinTieLoss(1, 2, 1), result);
        Assert.Equal(0.25, result.WinRate);
        Assert.Equal(0.5, result.TieRate);
        Assert.Equal(0.75, result.WinOrTieRate);

        var loose = WinRate.Compare(candidate, baseline, tieTolerance: 0.6);
        Assert.Equal(new WinTieLoss(0, 4, 0), loose);
    }

    [Fact]
    public void WinRateRejectsMismatchedPrompts()
    {
        var candidate = new Dictionary<string, double> { ["a"] = 1, ["x"] = 1 };
        var baseline = new Dictionary<string, double> { ["a"] = 1, ["y"] = 1 };
        var e = Assert.Throws<PargsException>(() => WinRate.Compare(candidate, baseline));
        Assert.Contains("'x'", e.Message);
        Assert.Contains("'y'", e.Message);
    }

    [Fact]
    public void DiversityFollowsTheArgsFormula()
    {
        // 5 distinct words: bigrams 4 unique/(4+1), trigrams 3/4, 4-grams 2/3 → 0.4
        Assert.Equal(0.4, Diversity.OfText("a b c d e"), 12);
        // "a a a a": bigrams 1/(3+1), trigrams 1/(2+1), 4-grams 1/(1+1) → 1/24
        Assert.Equal(1.0 / 24, Diversity.OfText("a a a a"), 12);
        Assert.Equal(0.75, Diversity.RepetitionRate("a a a a", 2), 12);
        // Shorter than 3 words: no trigrams → factor 0/1 → 0. Empty → 0.
        Assert.Equal(0.0, Diversity.OfText("a b"));
        Assert.Equal(0.0, Diversity.OfText(""));
        Assert.Equal(0.0, Diversity.OfText("   "));
        Assert.Equal((0.4 + 0 + 1.0 / 24) / 3, Diversity.Mean(new[] { "a b c d e", "", "a  a\ta\na" }), 12);
        Assert.True(double.IsNaN(Diversity.Mean(Array.Empty<string>())));
    }

    [Fact]
    public void DiversityCountsUnicodeWordNgrams()
    {
        // words: café 😊 café 😊 naïve → bigrams 3 unique of 4 → 3/5; trigrams 3 of 3 → 3/4; 4-grams 2 of 2 → 2/3
        Assert.Equal((3, 4), Diversity.CountNgrams(Diversity.Words("café 😊 café 😊 naïve"), 2));
        Assert.Equal(3.0 / 5 * 3.0 / 4 * 2.0 / 3, Diversity.OfText("café 😊 café 😊 naïve"), 12);
    }

    [Fact]
    public void CoherenceIsMeanCosine()
    {
        Assert.Equal(0.0, Coherence.Cosine(new float[] { 1, 0 }, new float[] { 0, 1 }), 12);
        Assert.Equal(1.0, Coherence.Cosine(new float[] { 1, 2 }, new float[] { 2, 4 }), 6);
        Assert.Equal(-1.0, Coherence.Cosine(new float[] { 1, 0 }, new float[] { -3, 0 }), 12);
        Assert.Equal(0.0, Coherence.Cosine(new float[] { 0, 0 }, new float[] { 1, 1 }));
        var embeddings = new Dictionary<string, float[]>
        {
            ["p"] = new float[] { 1, 0 }, ["same"] = new float[] { 2, 0 }, ["orthogonal"] = new float[] { 0, 5 },
            ["diagonal"] = new float[] { 1, 1 },
        };
        var mean = Coherence.Mean(new[] { ("p", "same"), ("p", "orthogonal"), ("p", "diagonal") }, s => embeddings[s]);
        Assert.Equal((1 + 0 + Math.Sqrt(0.5)) / 3, mean, 6);
    }

    [Fact]
    public void PerplexityIsExpOfMinusMeanLogProb()
    {
        Assert.Equal(Math.Pow(2, 1.5), Perplexity.FromLogProbs(new[] { Math.Log(0.5), Math.Log(0.25) }), 10);
        Assert.True(double.IsNaN(Perplexity.FromLogProbs(Array.Empty<double>())));
        // Token-weighted over texts: (log .5 + 3 log .25) / 4 = -7/4 log 2 → 2^(7/4)
        var logProbs = new Dictionary<string, double[]>
        {
            ["one"] = new[] { Math.Log(0.5) },
            ["three"] = new[] { Math.Log(0.25), Math.Log(0.25), Math.Log(0.25) },
        };
        var ppl = Perplexity.OfTexts(new[] { ("p", "one"), ("p", "three") }, (_, c) => logProbs[c]);
        Assert.Equal(Math.Pow(2, 1.75), ppl, 10);
    }

    [Fact]
    public void ThroughputPoolsTokensAndSeconds()
    {
        var t = Throughput.Of(new[]
        {
            new GenerationRecord { Method = "m", Tokens = 10, Seconds = 1 },
            new GenerationRecord { Method = "m", Tokens = 30, Seconds = 3 },
        });
        Assert.Equal(10.0, t.TokensPerSecond, 12);
        Assert.Equal(2.0, t.SecondsPerSample, 12);
        Assert.True(double.IsNaN(Throughput.Of(Array.Empty<GenerationRecord>()).TokensPerSecond));
    }
}
