namespace Pargs.Tests.Cli;

/// <summary>`pargs bench remote` runs both of its models end to end (tiny sizes) and refuses a model it does not know.</summary>
public sealed class CliBenchRemoteTests
{
    [Fact]
    public void Bench_remote_measures_both_models_with_one_request_per_row_and_step()
    {
        var run = PargsCli.Run("bench", "remote", "--models", "260k", "15m", "--rows", "1", "--max-tokens", "2");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("on stories260K, 2 tokens per row", run.Stdout);
        Assert.Contains("on the 15M shape (random weights), 2 tokens per row", run.Stdout);
        Assert.Contains("CPU ms / token", run.Stdout);
        // rows | engine | tokens | tok/s | × local | CPU ms / token | LM requests / row / step | RM requests / row / step | …
        var bothRemote = run.Stdout.Split('\n').Where(l => l.StartsWith("| 1 | remote LM + RM |")).ToArray();
        Assert.Equal(2, bothRemote.Length);
        Assert.All(bothRemote, l => Assert.Equal(["1.00", "1.00"], l.Split('|').Select(c => c.Trim()).Skip(7).Take(2)));
    }

    [Fact]
    public void Bench_remote_refuses_an_unknown_model()
        => PargsCli.Fails(["bench", "remote", "--models", "7b"], "--models", "7b");
}
