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

    [Theory]
    [InlineData(new[] { "--server", "cluster" }, "--server cluster")]
    [InlineData(new[] { "--server", "process", "--models", "15m" }, "--server process")]
    public void Bench_remote_refuses_a_server_placement_it_cannot_run(string[] extra, string named)
        => PargsCli.Fails(["bench", "remote", .. extra], named);

    [Theory]
    [InlineData("pargs serve: listening on http://127.0.0.1:41234/ (OpenAI base URL http://127.0.0.1:41234/v1)", "http://127.0.0.1:41234/")]
    [InlineData("pargs serve: listening on http://[::1]:8000/", "http://[::1]:8000/")]
    [InlineData("  models: stories260K", null)]
    [InlineData("pargs serve: listening on (nothing)", null)]
    public void The_child_server_url_is_read_from_its_listening_line(string line, string? url)
        => Assert.Equal(url, Pargs.Cli.Commands.ServeProcess.ListeningUrl(line)?.AbsoluteUri);
}

/// <summary>
/// `pargs bench remote --server process` end to end: a class of its own, so that xUnit runs it beside the in-process one
/// (each starts a server and warms a JIT up).
/// </summary>
public sealed class CliBenchRemoteProcessTests
{
    /// <summary>
    /// `--server process`: pargs serve as its own process (this CLI started again under `dotnet`, its URL read from its
    /// "listening on" line), both processes' CPU counted, the same one request per row and step; stopped at the end.
    /// </summary>
    [Fact]
    public void Bench_remote_with_pargs_serve_in_its_own_process_measures_through_it()
    {
        var run = PargsCli.Run("bench", "remote", "--server", "process", "--rows", "1", "--max-tokens", "2");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("pargs serve on loopback in its own process", run.Stdout);
        Assert.Contains("both processes' CPU time", run.Stdout);
        var bothRemote = run.Stdout.Split('\n').Single(l => l.StartsWith("| 1 | remote LM + RM |"));
        Assert.Equal(["1.00", "1.00"], bothRemote.Split('|').Select(c => c.Trim()).Skip(7).Take(2));
        // The server it started is gone once the run is (killed and reaped, or reaped by init within moments).
        int id = int.Parse(System.Text.RegularExpressions.Regex.Match(run.Stdout, @"pargs serve: process (\d+),").Groups[1].Value);
        for (int wait = 0; wait < 50 && Directory.Exists($"/proc/{id}"); wait++) Thread.Sleep(100);
        Assert.False(Directory.Exists($"/proc/{id}"), $"pargs serve (process {id}) outlived the benchmark");
    }
}
