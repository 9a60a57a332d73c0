using System.Globalization;
using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>
/// `pargs bench serve`'s load generator: distinct prompts per request, and a run against the test server whose counts
/// (tokens parsed from the streamed events' usage, rows per batched step from /metrics) are what was asked for, with the
/// one-stream baseline run before and after the others and the in-flight window no longer than the whole run.
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
        var options = new ServeBenchmarkOptions { Concurrency = [1, 3], RequestsPerStream = 3, MaxTokens = 5, K = 4, Prompts = ServeBenchmark.StoryPrompts(32), JitWarmUpSeconds = 3 };
        var log = new List<string>();
        var table = await ServeBenchmark.RunAsync(fixture.Server.Url, ServerFixture.Model, options, log.Add);
        Assert.Equal(2, table.Rows.Count);
        int Column(string name) => table.Columns.ToList().IndexOf(name) is var i and >= 0 ? i : throw new KeyNotFoundException(name);
        double Number(int row, string name) => double.Parse(table.Rows[row][Column(name)], CultureInfo.InvariantCulture);
        // The baseline ran twice (before and after the 3-stream level) and its row holds both runs' requests.
        Assert.Equal(["1 concurrent stream(s) (baseline, before the others): warm-up…", "3 concurrent stream(s): warm-up…", "1 concurrent stream(s) (baseline, after the others): warm-up…"],
                     log.Where(l => l.EndsWith("warm-up…", StringComparison.Ordinal)));
        Assert.Equal("6", table.Rows[0][Column("requests")]);
        Assert.Equal("9", table.Rows[1][Column("requests")]);
        Assert.Contains(table.Notes, n => n.StartsWith("1 stream: the baseline runs before the other levels and again after them", StringComparison.Ordinal));
        // max_tokens 2…7 (5 on average) and a model that may stop at EOS: at most 7 tokens per request, some text in each level.
        Assert.Contains("2–7 tokens per request (5 on average)", table.Title);
        Assert.InRange(Number(0, "tokens"), 1, 2 * 3 * 7);
        Assert.InRange(Number(1, "tokens"), 1, 3 * 3 * 7);
        // One stream: the window is the whole run, one row per batched step.
        Assert.Equal("1.0", table.Rows[0][Column("rows / step")]);
        Assert.Equal("100", table.Rows[0][Column("in-flight share of tokens %")]);
        Assert.Equal("1.00", table.Rows[0][Column("× 1 stream")]);
        Assert.Equal(table.Rows[0][Column("tok/s in flight")], table.Rows[0][Column("tok/s whole run")]);
        // Three streams: the window ends when the first stream is done, so it holds some of the tokens but not more than all.
        Assert.InRange(Number(1, "in-flight share of tokens %"), 1, 100);
        Assert.InRange(Number(1, "rows / step"), 1.0, 3.0);
        Assert.InRange(Number(1, "rows / step, whole run"), 1.0, 3.0);
        // The JIT warm-up ran first, at the highest concurrency, and says how many rounds and methods it took.
        Assert.StartsWith("JIT warm-up: rounds of 3 concurrent request(s)", log[0]);
        Assert.Single(table.Notes, n => System.Text.RegularExpressions.Regex.IsMatch(n, @"^JIT warm-up before the levels \(untimed\): [1-9][0-9]* rounds of 3 concurrent request\(s\)"));
        // Each level's CPU by kind of thread: the decoding worker ran, and the thread pool carried the HTTP work.
        if (OperatingSystem.IsLinux())
        {
            var byThread = Assert.Single(table.Notes, n => n.StartsWith("CPU by thread, 3 stream(s): process CPU ", StringComparison.Ordinal));
            Assert.Matches(@"decoding worker [0-9.]+ \([0-9.]+ kernel\), .*thread pool [0-9.]+ ", byThread);
            Assert.Matches(@"per token [0-9.]+ thread-pool work items, [0-9.]+ KiB allocated", byThread);
        }
    }
}
