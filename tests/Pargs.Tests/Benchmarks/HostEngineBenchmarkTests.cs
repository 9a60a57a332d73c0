using Pargs.Benchmarks;

namespace Pargs.Tests.Benchmarks;

public class HostEngineBenchmarkTests
{
    [Fact]
    public void The_host_benchmark_times_both_engines_alternately_and_finds_the_same_tokens()
    {
        var table = HostEngineBenchmark.Run(new HostEngineBenchmarkOptions { Gguf = TestPaths.Stories260KGguf, NewTokens = 6, PromptLength = 4, Rounds = 2 });
        Assert.Equal(["torch", "host", "host", "torch"], table.Rows.Select(r => r[0]));
        Assert.All(table.Rows, r => Assert.True(double.Parse(r[4], System.Globalization.CultureInfo.InvariantCulture) > 0, string.Join(" | ", r)));
        Assert.Contains(table.Notes, n => n.StartsWith("same greedy tokens on both engines: yes", StringComparison.Ordinal));
    }

    [Fact]
    public void A_file_the_host_engine_does_not_decode_is_refused_in_one_line()
    {
        var error = Assert.Throws<PargsException>(() => HostEngineBenchmark.Run(new HostEngineBenchmarkOptions { Gguf = TestPaths.Stories260KBin }));
        Assert.Contains("not a file the host engine decodes", error.Message);
    }
}
