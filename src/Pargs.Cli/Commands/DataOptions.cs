using System.CommandLine;
using Pargs.Data;

namespace Pargs.Cli.Commands;

/// <summary>Options the commands that read preference data share.</summary>
public static class DataOptions
{
    public static Option<string> OnBadRow()
        => new("--on-bad-row") { Description = "fail (default): stop at the first malformed row, naming file and line | skip: leave such rows out and count them", DefaultValueFactory = _ => "fail" };

    public static BadRowPolicy ParseOnBadRow(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "fail" => BadRowPolicy.Fail,
        "skip" => BadRowPolicy.Skip,
        _ => throw new PargsException($"--on-bad-row must be skip or fail, got \"{text}\""),
    };
}
