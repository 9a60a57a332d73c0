using Pargs.Benchmarks;

namespace Pargs.Tests.Benchmarks;

/// <summary>The encoder rows of `bench train-rm` on a tiny setting: what each row measures (never how fast).</summary>
public class TrainRmEncoderBenchTests
{
    [Fact]
    public void The_encoder_table_counts_prefixes_and_materialized_inputs_per_pair_beside_the_causal_rows()
    {
        var table = TrainRmBenchmark.RunEncoder(new TrainRmBenchmarkOptions
        {
            ResponseLengths = [16], PromptLength = 4, PairsPerBatch = 2, Repeats = 1, Stories260KPath = TestPaths.Stories260KGguf,
        });
        // L = 16: causal partial and full; encoder full (1 prefix, 2 inputs), stride 2 (i = 2, 4, …, 16: 8 prefixes, 16
        // inputs) and every prefix (16, 32) — chosen and rejected are different random words from the first one on.
        var rows = table.Rows.Select(r => (r[1], r[2], r[3], r[4])).ToList();
        Assert.Equal(
        [
            ("causal (stories260K + score)", "partial, one forward", "16", "2"),
            ("causal (stories260K + score)", "full", "1", "2"),
            ("encoder (BERT)", "full", "1.0", "2.0"),
            ("encoder (BERT)", "partial, stride 2", "8.0", "16.0"),
            ("encoder (BERT)", "partial, every prefix", "16.0", "32.0"),
        ], rows);
        Assert.All(table.Rows, r => Assert.True(double.Parse(r[5], System.Globalization.CultureInfo.InvariantCulture) > 0, string.Join(" | ", r)));
    }
}
