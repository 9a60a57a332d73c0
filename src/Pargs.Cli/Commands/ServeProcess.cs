using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pargs.Cli.Commands;

/// <summary>
/// <c>pargs serve</c> started as a process of its own — this executable with <c>serve --port 0</c> — for a benchmark that
/// measures the server as users run it: its own runtime, thread pool and sockets, not hosted inside the benchmark's process
/// (where one thread pool serves client and server alike). Its URL is read from the line it prints once it listens, its CPU
/// time from the OS; disposing it stops it.
/// </summary>
public sealed class ServeProcess : IDisposable
{
    readonly Process process;

    readonly EventHandler onExit;
    readonly PosixSignalRegistration[] onSignals;

    ServeProcess(Process process, Uri url)
    {
        this.process = process;
        Url = url;
        // A benchmark stopped by Ctrl-C or SIGTERM never reaches Dispose (the command line's own handler cancels a token the
        // benchmark does not read, then the runtime ends): the server is stopped on the signal itself, and at any exit.
        onExit = (_, _) => Stop(process);
        AppDomain.CurrentDomain.ProcessExit += onExit;
        onSignals = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGQUIT }.Select(signal => PosixSignalRegistration.Create(signal, _ => Stop(process)))];
    }

    public Uri Url { get; }

    /// <summary>The server's process id (printed, so that a run's server can be told apart from any other).</summary>
    public int Id => process.Id;

    /// <summary>The server process's CPU time so far (every thread, user and kernel).</summary>
    public TimeSpan Cpu
    {
        get
        {
            process.Refresh();
            return process.TotalProcessorTime;
        }
    }

    /// <summary>Starts <c>pargs serve --port 0</c> with <paramref name="arguments"/> and waits until it listens.</summary>
    public static ServeProcess Start(IEnumerable<string> arguments, TimeSpan startTimeout)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath ?? throw new PargsException("bench remote --server process: this process's executable is unknown"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Under `dotnet Pargs.Cli.dll` the executable is the host: the assembly goes first.
        if (Path.GetFileNameWithoutExtension(info.FileName) == "dotnet") info.ArgumentList.Add(typeof(ServeProcess).Assembly.Location);
        foreach (string a in new[] { "serve", "--port", "0" }.Concat(arguments)) info.ArgumentList.Add(a);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var errors = new ConcurrentQueue<string>();
        // Both pipes are drained for the server's whole life: a full pipe would block its writes.
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line && ListeningUrl(line) is { } url) listening.TrySetResult(url);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line && errors.Count < 20) errors.Enqueue(line);
        };
        process.Exited += (_, _) => listening.TrySetException(new PargsException(
            $"bench remote --server process: pargs serve exited (code {process.ExitCode}) before it listened{(errors.IsEmpty ? "" : ": " + string.Join(" | ", errors))}"));
        if (!process.Start()) throw new PargsException($"bench remote --server process: could not start {info.FileName}");
        try
        {
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            if (!listening.Task.Wait(startTimeout))
                throw new PargsException($"bench remote --server process: pargs serve did not listen within {startTimeout.TotalSeconds:F0} s");
            return new ServeProcess(process, listening.Task.Result);
        }
        catch (AggregateException e) when (e.InnerException is PargsException inner)
        {
            Stop(process);
            throw inner;
        }
        catch
        {
            Stop(process);
            throw;
        }
    }

    /// <summary>The URL of <c>pargs serve</c>'s "listening on URL (…)" line, else null.</summary>
    public static Uri? ListeningUrl(string line)
    {
        const string marker = "listening on ";
        int at = line.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0) return null;
        string rest = line[(at + marker.Length)..];
        int end = rest.IndexOf(' ');
        return Uri.TryCreate(end < 0 ? rest : rest[..end], UriKind.Absolute, out var url) ? url : null;
    }

    static void Stop(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { } // never started, or already gone
        process.Dispose();
    }

    public void Dispose()
    {
        AppDomain.CurrentDomain.ProcessExit -= onExit;
        foreach (var registration in onSignals) registration.Dispose();
        Stop(process);
    }
}
