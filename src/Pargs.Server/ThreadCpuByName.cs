using System.Globalization;

namespace Pargs.Server;

/// <summary>
/// The CPU time of this process's threads, summed by thread name (Linux: /proc/self/task/*/schedstat, nanoseconds on a
/// core; elsewhere empty). `bench remote` logs the difference over a level: client and server share the process, and what
/// a remote token costs on each side — the server's worker(s), Kestrel and HttpClient on the thread pool, the client's
/// decoding thread, the compiler — is what tells which side to cut, whatever the machine's load does to wall time.
/// </summary>
sealed class ThreadCpuByName
{
    readonly Dictionary<int, (string Name, long Nanoseconds)> threads;

    ThreadCpuByName(Dictionary<int, (string, long)> threads) => this.threads = threads;

    public static ThreadCpuByName Now()
    {
        var threads = new Dictionary<int, (string, long)>();
        if (!OperatingSystem.IsLinux() || !Directory.Exists("/proc/self/task")) return new ThreadCpuByName(threads);
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                int tid = int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture);
                string name = File.ReadAllText(Path.Combine(dir, "comm")).TrimEnd('\n');
                string schedstat = File.ReadAllText(Path.Combine(dir, "schedstat"));
                long ns = long.Parse(schedstat.AsSpan(0, schedstat.IndexOf(' ')), CultureInfo.InvariantCulture);
                threads[tid] = (name, ns);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { } // a thread that ended meanwhile
        }
        return new ThreadCpuByName(threads);
    }

    /// <summary>CPU milliseconds per name since <paramref name="before"/> (threads started since count whole), largest first.</summary>
    public IReadOnlyList<(string Name, double Milliseconds)> Since(ThreadCpuByName before)
        => threads.GroupBy(t => t.Value.Name, t => (t.Value.Nanoseconds - (before.threads.TryGetValue(t.Key, out var b) && b.Name == t.Value.Name ? b.Nanoseconds : 0)) / 1e6)
            .Select(g => (g.Key, g.Sum()))
            .Where(g => g.Item2 > 0)
            .OrderByDescending(g => g.Item2)
            .ToList();
}
