using Spectre.Console;

namespace Pargs.Cli;

/// <summary>
/// Turns a <see cref="PargsException"/> (bad input the user can fix) into one readable line on stderr and
/// exit code 1, with no stack trace; so too a file-system failure (permissions, a full disk, a path that
/// vanished), whose .NET message names the path. Anything else is a bug and keeps its stack trace for the report.
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
        catch (Exception e) when (IsFileSystemFailure(Unwrap(e)))
        {
            Console.Error.WriteLine($"error: {Unwrap(e).Message}");
            return 1;
        }
        catch (Exception e) when (Unwrap(e) is OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled");
            return 130;
        }
    }

    /// <summary>
    /// A failure of the file system whose message names the path (permissions, a missing folder, a full disk). Not
    /// every IOException: one without a path (e.g. a stream that ended early) is a reader that failed to say which
    /// file was bad, a bug to fix there, and keeps its stack trace.
    /// </summary>
    static bool IsFileSystemFailure(Exception e)
        => e is UnauthorizedAccessException
           || (e is IOException and not EndOfStreamException && (e.Message.Contains('/') || e.Message.Contains('\\')));

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
    /// Checks an output-folder option before any work is done, so a path that cannot become a folder fails with
    /// one line (Directory.CreateDirectory would throw an IOException hours into training instead). Missing
    /// parent folders are fine: they are created with the folder.
    /// </summary>
    public static string OutputFolder(string path, string option = "--out")
    {
        if (string.IsNullOrWhiteSpace(path)) throw new PargsException($"{option}: the path is empty; expected a folder");
        if (File.Exists(path)) throw new PargsException($"{option} {path}: is an existing file; expected a folder (new or existing)");
        NoFileAbove(path, option);
        return path;
    }

    /// <summary>
    /// The file counterpart of <see cref="OutputFolder"/>: an existing folder cannot be replaced by a file. Missing
    /// parent folders are fine: the writer creates them with the file, after the work (so a run that fails on its
    /// inputs leaves nothing behind).
    /// </summary>
    public static string OutputFile(string path, string option = "--out")
    {
        if (string.IsNullOrWhiteSpace(path)) throw new PargsException($"{option}: the path is empty; expected a file path");
        if (Path.EndsInDirectorySeparator(path) || Directory.Exists(path))
            throw new PargsException($"{option} {path}: names a folder; expected a file path");
        if (DevicePaths.IsDevice(path)) return path; // /dev/stdout and the like are written in place
        // Writing goes to a temporary file renamed over the path: that would replace a link, not write where it points.
        if (new FileInfo(path).LinkTarget is { } target)
            throw new PargsException($"{option} {path}: is a symbolic link (to {target}); give the file it points to");
        NoFileAbove(path, option);
        return path;
    }

    /// <summary>
    /// Nothing can ever be written below an existing file (or a link that leads nowhere) among the path's parent
    /// folders; and a leading ~ is only ever expanded by a shell, so a quoted one would make a folder named "~".
    /// </summary>
    static void NoFileAbove(string path, string option)
    {
        if (path == "~" || path.StartsWith("~/") || path.StartsWith("~\\"))
            throw new PargsException($"{option} {path}: starts with ~, which only a shell expands; give the full path");
        for (var dir = Path.GetDirectoryName(Path.GetFullPath(Path.TrimEndingDirectorySeparator(path))); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
            if (File.Exists(dir) || (new FileInfo(dir).LinkTarget is not null && !Directory.Exists(dir)))
                throw new PargsException($"{option} {path}: {dir} is not a folder (a file, or a link that leads nowhere), so nothing can be written below it");
    }

    /// <summary>System.CommandLine's parse errors name .NET types ("as expected type 'System.Double'"); say what is expected instead.</summary>
    public static string InUserTerms(string message) => System.Text.RegularExpressions.Regex.Replace(message,
        @" as expected type 'System\.(?:Nullable`1\[System\.)?(\w+)\]?'", m => m.Groups[1].Value switch
        {
            "Double" or "Single" => " (expected a number)",
            "Int32" or "Int64" => " (expected a whole number)",
            "Boolean" => " (expected true or false)",
            _ => "",
        });

    /// <summary>An option given outright where it has no effect is an error: a silently ignored setting misleads.</summary>
    public static void NoEffectUnless(System.CommandLine.ParseResult result, System.CommandLine.Option option, bool hasEffect, string unless)
    {
        if (!hasEffect && result.GetResult(option) is { Implicit: false })
            throw new PargsException($"{option.Name} has no effect {unless}");
    }

    /// <summary>Markup-safe print helper for messages that may contain brackets.</summary>
    public static void Info(string text) => AnsiConsole.MarkupLine(Markup.Escape(text));
}
