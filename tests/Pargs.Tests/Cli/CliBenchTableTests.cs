namespace Pargs.Tests.Cli;

/// <summary>`pargs bench` into a pipe prints its tables as whole Markdown, not as tables cut to 80 columns.</summary>
public sealed class CliBenchTableTests
{
    [Fact]
    public void Bench_tables_are_markdown_when_stdout_is_not_a_terminal()
    {
        var run = PargsCli.Run("bench", "generate", "--stories", TestPaths.Stories260KGguf, "--models", "260k", "--batch", "1", "--threads", "1", "--seconds", "0.2", "--prompt-length", "4");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("| machine | |", run.Stdout);
        Assert.Contains("|---|", run.Stdout);
        Assert.DoesNotContain("…", run.Stdout); // nothing truncated
        Assert.DoesNotContain("┌", run.Stdout); // no box drawing
    }
}
