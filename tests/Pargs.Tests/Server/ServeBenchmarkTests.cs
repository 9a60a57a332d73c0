using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>
/// `pargs bench serve`'s load generator: distinct prompts per request, and a run against the test server whose counts
/// (tokens parsed from the streamed events' usage, rows per batched step from /metrics) are what was asked for.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class ServeBenchmarkTests(ServerFixture fixture)
{
    [Fact]
    public void Story_prompts_are_distinct()
    {
        var prompts = ServeBenchmark.StoryPrompts(512);
        Assert.Equal(512, prompts.Count);
        Assert.Equal(512, prompts.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task A_short_run_counts_every_streamed_token_and_the_servers_rows_per_step()
    {
        var options = new ServeBenchmarkOptions { Concurrency = [1, 2], RequestsPerStream = 2, MaxTokens = 5, K = 4, Prompts = ServeBenchmark.StoryPrompts(16) };
        var table = await ServeBenchmark.RunAsync(fixture.Server.Url, ServerFixture.Model, options);
        Assert.Equal(2, table.Rows.Count);
        int Column(string name) => table.Columns.ToList().IndexOf(name);
        // max_tokens 2…7 (5 on average) and a model that may stop at EOS: at most 7 tokens per request, some text in each level.
        Assert.Contains("2–7 tokens per request (5 on average)", table.Title);
        Assert.InRange(int.Parse(table.Rows[0][Column("tokens")]), 1, 1 * 2 * 7);
        Assert.InRange(int.Parse(table.Rows[1][Column("tokens")]), 1, 2 * 2 * 7);
        Assert.Equal("1.0", table.Rows[0][Column("rows / step")]); // one stream: one row per batched step
        Assert.InRange(double.Parse(table.Rows[1][Column("rows / step")], System.Globalization.CultureInfo.InvariantCulture), 1.0, 2.0);
    }
}
