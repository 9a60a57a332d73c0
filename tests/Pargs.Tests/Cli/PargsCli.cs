using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Pargs.Tests.Cli;

/// <summary>What one run of the real `pargs` executable did.</summary>
public sealed record CliRun(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stdout with Spectre's 80-column line wrapping undone, for substring checks.</summary>
    public string StdoutFlat => Regex.Replace(Stdout, @"\s+", " ");
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs Pargs.Cli.dll (copied into the test output folder by the project reference) as a child process, the way
/// a user does, so exit codes, stderr and the top-level error handling are what is tested.
/// </summary>
public static class PargsCli
{
    static readonly string CliDll = Path.Combine(AppContext.BaseDirectory, "Pargs.Cli.dll");
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    public static string Stories260KGguf => TestPaths.Stories260KGguf;

    public static CliRun Run(params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(CliDll);
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"pargs {string.Join(' ', args)} ran longer than {Timeout}");
        }
        process.WaitForExit(); // drains the redirected streams
        return new CliRun(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// The contract for bad input: a non-zero exit, every <paramref name="expected"/> fragment (file name, problem)
    /// in stderr, and no stack trace or exception type name.
    /// </summary>
    public static CliRun Fails(string[] args, params string[] expected)
    {
        var run = Run(args);
        Assert.True(run.ExitCode != 0, $"expected a non-zero exit\n{run}");
        foreach (var fragment in expected)
            Assert.True(run.Stderr.Contains(fragment, StringComparison.OrdinalIgnoreCase), $"stderr lacks \"{fragment}\"\n{run}");
        Assert.False(Regex.IsMatch(run.Stderr, @"^\s+at \S", RegexOptions.Multiline), $"stack trace in stderr\n{run}");
        Assert.False(Regex.IsMatch(run.Stderr + run.Stdout, @"\b\w*Exception\b"), $"exception type name in the output\n{run}");
        Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:"));
        return run;
    }

    public static CliRun Succeeds(params string[] args)
    {
        var run = Run(args);
        Assert.True(run.ExitCode == 0, $"expected exit 0\n{run}");
        return run;
    }
}
