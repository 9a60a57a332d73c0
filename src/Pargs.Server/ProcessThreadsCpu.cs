using System.Globalization;

namespace Pargs.Server;

/// <summary>
/// The process's CPU time by kind of thread, read from Linux's /proc/self/task (each thread's name, its on-CPU
/// nanoseconds in schedstat, its kernel ticks in stat), plus the runtime's JIT, thread-pool and allocation counters.
/// WHY: `bench serve` runs the server and its load generator in one process, and "CPU outside the decoding worker" is
/// several things — the thread pool (Kestrel, the events' JSON, the load generator's HttpClient), the socket engine,
/// the tiered JIT recompiling hot methods, GC — whose sizes decide what is worth cutting. Two snapshots give the split
/// (`bench serve` per level; `bench remote` per level too, where the client's decoders are the "other" threads).
/// Empty where /proc is not there (not Linux): the bench then prints no split.
/// </summary>
public sealed record ProcessThreadsCpu(IReadOnlyDictionary<string, (double Seconds, double KernelSeconds)> Groups, double ProcessSeconds,
                                       long JitMethods, double JitSeconds, long ThreadPoolItems, long AllocatedBytes)
{
    /// <summary>The groups, in the order they print: thread names (as /proc shows them, 15 characters) → group.</summary>
    public static readonly (string Group, Func<string, bool> Matches)[] Kinds =
    [
        ("decoding worker", name => name.StartsWith("pargs-generatio", StringComparison.Ordinal)),
        ("reward worker", name => name.StartsWith("pargs-rewards", StringComparison.Ordinal)),
        ("CPU pool helpers", name => name.StartsWith("pargs-cpu-", StringComparison.Ordinal)),
        ("thread pool", name => name.StartsWith(".NET TP Worker", StringComparison.Ordinal) || name.StartsWith(".NET Long Runni", StringComparison.Ordinal)),
        ("socket engine", name => name.StartsWith(".NET Sockets", StringComparison.Ordinal)),
        ("tiered JIT", name => name.StartsWith(".NET Tiered Com", StringComparison.Ordinal)),
        ("GC and finalizer", name => name.StartsWith(".NET BGC", StringComparison.Ordinal) || name.StartsWith(".NET Server GC", StringComparison.Ordinal) || name.StartsWith(".NET Finalizer", StringComparison.Ordinal)),
        ("other", _ => true),
    ];

    /// <summary>Now. Threads that exit between two snapshots take their time with them: <see cref="Since"/> reports that remainder.</summary>
    public static ProcessThreadsCpu Take()
    {
        var groups = new Dictionary<string, (double, double)>();
        try
        {
            double tick = 1.0 / 100; // USER_HZ: /proc reports kernel time in 1/100 s on Linux
            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                try
                {
                    string name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
                    string schedstat = File.ReadAllText(Path.Combine(task, "schedstat"));
                    double seconds = long.Parse(schedstat.AsSpan(0, schedstat.IndexOf(' ')), CultureInfo.InvariantCulture) / 1e9;
                    string stat = File.ReadAllText(Path.Combine(task, "stat"));
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // the name may hold spaces: fields follow its ')'
                    double kernel = long.Parse(fields[12], CultureInfo.InvariantCulture) * tick; // stime, field 15 of stat
                    string group = Kinds.First(k => k.Matches(name)).Group;
                    var (s, k) = groups.GetValueOrDefault(group);
                    groups[group] = (s + seconds, k + kernel);
                }
                catch (IOException) { } // the thread exited while being read
                catch (FormatException) { }
            }
        }
        catch (DirectoryNotFoundException) { groups.Clear(); }
        catch (UnauthorizedAccessException) { groups.Clear(); }
        return new ProcessThreadsCpu(groups, Environment.CpuUsage.TotalTime.TotalSeconds, System.Runtime.JitInfo.GetCompiledMethodCount(),
            System.Runtime.JitInfo.GetCompilationTime().TotalSeconds, ThreadPool.CompletedWorkItemCount, GC.GetTotalAllocatedBytes());
    }

    /// <summary>
    /// What the process spent from <paramref name="before"/> to this snapshot, per token: µs of CPU by group (kernel part in
    /// brackets), thread-pool work items, KiB allocated, methods the JIT compiled. Null when /proc gave nothing.
    /// </summary>
    public string? Since(ProcessThreadsCpu before, double tokens)
    {
        if (Groups.Count == 0 || before.Groups.Count == 0 || tokens <= 0) return null;
        string Us(double seconds) => (1e6 * seconds / tokens).ToString("F1", CultureInfo.InvariantCulture);
        var parts = new List<string>();
        double listed = 0;
        foreach (var (group, _) in Kinds)
        {
            var (s, k) = Groups.GetValueOrDefault(group);
            var (s0, k0) = before.Groups.GetValueOrDefault(group);
            if (s - s0 <= 0) continue;
            listed += s - s0;
            parts.Add($"{group} {Us(s - s0)} ({Us(Math.Max(0, k - k0))} kernel)");
        }
        double process = ProcessSeconds - before.ProcessSeconds;
        if (process - listed > 0.01) parts.Add($"exited threads {Us(process - listed)}");
        return string.Create(CultureInfo.InvariantCulture,
            $"process CPU {Us(process)} µs per token: {string.Join(", ", parts)}; per token {(ThreadPoolItems - before.ThreadPoolItems) / tokens:F2} thread-pool work items, " +
            $"{(AllocatedBytes - before.AllocatedBytes) / tokens / 1024:F1} KiB allocated; the JIT compiled {JitMethods - before.JitMethods} methods ({JitSeconds - before.JitSeconds:F2} s in the JIT, wall)");
    }
}
