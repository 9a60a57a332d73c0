using Spectre.Console;

namespace Pargs.Cli;

/// <summary>
/// Turns a <see cref="PargsException"/> (bad input the user can fix) into one readable line on stderr and
/// exit code 1, with no stack trace. Anything else is a bug and keeps its stack trace for the report.
/// </summary>
public static class CliErrors
{
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (Unwrap(e) is PargsException pe)
        {
            Console.Error.WriteLine($"error: {pe.Message}");
            return 1;
        }
        catch (Exception e) when (Unwrap(e) is OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled");
            return 130;
        }
    }

    /// <summary>An action for a command: runs <paramref name="body"/> with the same error handling.</summary>
    public static Func<System.CommandLine.ParseResult, int> Action(Func<System.CommandLine.ParseResult, int> body)
        => result => Run(() => body(result));

    static Exception Unwrap(Exception e)
    {
        while (e is AggregateException { InnerException: { } inner }) e = inner;
        while (e is System.Reflection.TargetInvocationException { InnerException: { } inner2 }) e = inner2;
        return e;
    }

    /// <summary>
    /// Checks an output-folder option before any work is done, so a path that is an existing file fails with one
    /// line (Directory.CreateDirectory would throw an IOException hours into training instead).
    /// </summary>
    public static string OutputFolder(string path, string option = "--out")
    {
        if (File.Exists(path)) throw new PargsException($"{option} {path}: is an existing file; expected a folder (new or existing)");
        return path;
    }

    /// <summary>The file counterpart of <see cref="OutputFolder"/>: an existing folder cannot be replaced by a file.</summary>
    public static string OutputFile(string path, string option = "--out")
    {
        if (Directory.Exists(path)) throw new PargsException($"{option} {path}: is an existing folder; expected a file path");
        return path;
    }

    /// <summary>Markup-safe print helper for messages that may contain brackets.</summary>
    public static void Info(string text) => AnsiConsole.MarkupLine(Markup.Escape(text));
}
