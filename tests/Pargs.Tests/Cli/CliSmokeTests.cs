namespace Pargs.Tests.Cli;

/// <summary>The main commands run end to end on the shipped stories260K model.</summary>
public class CliSmokeTests
{
    [Fact]
    public void Info_describes_the_gguf()
    {
        var run = PargsCli.Succeeds("info", "--model", PargsCli.Stories260KGguf);
        Assert.Contains("gguf", run.Stdout);
        Assert.Contains("512", run.Stdout); // context and vocabulary
        Assert.Contains("260,032", run.Stdout); // parameters
    }

    [Fact]
    public void Greedy_generate_prints_the_prompt_and_a_continuation()
    {
        var run = PargsCli.Succeeds("generate", "--model", PargsCli.Stories260KGguf, "--method", "greedy", "--max-new-tokens", "5", "--threads", "1");
        string text = run.Stdout.Trim();
        Assert.StartsWith("Once upon a time", text);
        Assert.True(text.Length > "Once upon a time".Length + 3, run.ToString());
        Assert.Contains("[5 tokens", run.Stderr);
        // Greedy is deterministic: a second run prints the same text.
        Assert.Equal(text, PargsCli.Succeeds("generate", "--model", PargsCli.Stories260KGguf, "--method", "greedy", "--max-new-tokens", "5", "--threads", "1").Stdout.Trim());
    }
}
