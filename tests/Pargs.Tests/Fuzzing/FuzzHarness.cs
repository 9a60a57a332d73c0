using System.Diagnostics;

namespace Pargs.Tests.Fuzzing;

/// <summary>One input that broke the invariant: its case number reproduces it (same seed).</summary>
public sealed record FuzzFailure(string Target, int Case, string Problem)
{
    public override string ToString() => $"{Target} case {Case}: {Problem}";
}

/// <summary>
/// Runs a reader over mutated inputs and checks the untrusted-input invariant: each case ends in success or a
/// <see cref="PargsException"/> — never another exception type — within <see cref="CaseTimeout"/>, allocating at
/// most <see cref="MaxAllocatedBytes"/> (managed allocations of the reading thread; native tensor storage is
/// bounded separately, by the readers' checks against the file length). The number of cases per reader is
/// small in the normal test run and set by the environment variable PARGS_FUZZ_CASES for long runs; with
/// PARGS_FUZZ_KEEP=folder every failing input is written there, to become a regression case.
/// </summary>
public static class FuzzHarness
{
    public static TimeSpan CaseTimeout { get; } = TimeSpan.FromSeconds(20);
    public const long MaxAllocatedBytes = 512L << 20;

    public static int Cases(int byDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("PARGS_FUZZ_CASES"), out int n) && n > 0 ? n : byDefault;

    /// <summary>
    /// Writes each mutated input to <paramref name="fileName"/> in a scratch folder (after <paramref name="prepare"/>,
    /// which may add sibling files) and calls <paramref name="read"/> on it; returns the failures.
    /// </summary>
    public static List<FuzzFailure> Run(string target, int cases, Func<int, byte[]> input, string fileName, Action<string> read,
        Action<string>? prepare = null)
    {
        var failures = new List<FuzzFailure>();
        using var temp = new TempDir();
        string keep = Environment.GetEnvironmentVariable("PARGS_FUZZ_KEEP") ?? "";
        for (int c = 0; c < cases; c++)
        {
            string folder = Path.Combine(temp.Path, $"case{c}");
            Directory.CreateDirectory(folder);
            prepare?.Invoke(folder);
            string path = Path.Combine(folder, fileName);
            byte[] bytes = input(c);
            File.WriteAllBytes(path, bytes);
            string? problem = RunOne(() => read(path));
            if (problem != null)
            {
                failures.Add(new FuzzFailure(target, c, problem));
                if (keep.Length > 0)
                {
                    Directory.CreateDirectory(keep);
                    File.WriteAllBytes(Path.Combine(keep, $"{target}-case{c}-{fileName}"), bytes);
                }
            }
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
        }
        return failures;
    }

    /// <summary>Null when the invariant held; otherwise what went wrong.</summary>
    public static string? RunOne(Action read)
    {
        Exception? caught = null;
        long allocated = 0;
        var clock = Stopwatch.StartNew();
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try { read(); }
            catch (Exception e) { caught = e; }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }, maxStackSize: 1 << 20); // 1 MiB, less than the main thread's: unbounded recursion shows up here first
        thread.Start();
        if (!thread.Join(CaseTimeout))
            return $"still running after {CaseTimeout.TotalSeconds} s (a hang)"; // the thread is abandoned; the run reports it
        if (clock.Elapsed > CaseTimeout) return $"took {clock.Elapsed.TotalSeconds:F1} s";
        if (allocated > MaxAllocatedBytes) return $"allocated {allocated >> 20} MB (limit {MaxAllocatedBytes >> 20} MB)";
        if (caught is null or PargsException)
        {
            if (caught is PargsException p && (p.Message.Contains('\n') || p.Message.Contains("   at ")))
                return $"a PargsException message of several lines: {p.Message}";
            return null;
        }
        string frame = caught.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("at Pargs.")) ?? caught.StackTrace?.Split('\n')[0].Trim() ?? "";
        return $"{caught.GetType().Name}: {caught.Message.Split('\n')[0]} ({frame})";
    }

    /// <summary>A readable summary of at most 15 failures, grouped by problem.</summary>
    public static string Summary(IReadOnlyList<FuzzFailure> failures) =>
        string.Join("\n", failures.GroupBy(f => f.Problem.Split('(')[0]).Take(15)
            .Select(g => $"{g.Count()}× {g.First()}"));
}
