using System.Diagnostics;
using System.Globalization;

namespace Pargs.Server;

/// <summary>
/// A benchmark's untimed warm-up: rounds of its own work until .NET's tiered JIT has settled, so the timed levels run the
/// optimized code a long-running client and server run. Settled: the rounds of the last <see cref="QuietSeconds"/>
/// compiled at most <see cref="QuietMethods"/> methods in all. WHY a window of seconds, not a number of rounds: the
/// background JIT works in bursts (a 16-stream round of stories260K compiled 0, 128, 73, … methods in turn for ~20 s), so
/// two quiet rounds in a row came 2 s in, long before it was done — and a level that still compiles pays the JIT's CPU as
/// its own (`bench remote`'s LM + RM level: 6 % of its samples with a rounds-based stop).
/// </summary>
static class JitSettle
{
    public const int QuietMethods = 20;
    public const double QuietSeconds = 5;

    /// <summary>How a warm-up went: methods per round, seconds, whether it settled before the cap.</summary>
    public sealed record Result(IReadOnlyList<long> PerRound, double Seconds, long Methods, bool Settled)
    {
        /// <summary>"N rounds in S s compiled M methods (per round: …)", and a warning when it did not settle within <paramref name="capSeconds"/>.</summary>
        public string Describe(string round, double capSeconds)
        {
            string rounds = PerRound.Count <= 12 ? string.Join(", ", PerRound) : string.Join(", ", PerRound.Take(6)) + ", …, " + string.Join(", ", PerRound.TakeLast(4));
            return string.Create(CultureInfo.InvariantCulture,
                $"{PerRound.Count} rounds of {round} in {Seconds:F1} s compiled {Methods} methods (per round: {rounds}){(Settled ? "" : $"; the JIT had NOT settled when the {capSeconds:F0} s were up")}");
        }
    }

    /// <summary>Runs <paramref name="round"/> until the JIT settles or <paramref name="capSeconds"/> have passed.</summary>
    public static async Task<Result> WarmUp(Func<Task> round, double capSeconds, Action<int, long>? afterRound = null)
    {
        var clock = Stopwatch.StartNew();
        long first = System.Runtime.JitInfo.GetCompiledMethodCount();
        var perRound = new List<long>();
        double quietSince = 0;
        long quietMethods = 0;
        bool settled = false;
        while (!settled && clock.Elapsed.TotalSeconds < capSeconds)
        {
            long before = System.Runtime.JitInfo.GetCompiledMethodCount();
            await round();
            long compiled = System.Runtime.JitInfo.GetCompiledMethodCount() - before;
            perRound.Add(compiled);
            afterRound?.Invoke(perRound.Count, System.Runtime.JitInfo.GetCompiledMethodCount());
            if (quietMethods + compiled > QuietMethods) { quietSince = clock.Elapsed.TotalSeconds; quietMethods = 0; }
            else quietMethods += compiled;
            settled = clock.Elapsed.TotalSeconds - quietSince >= QuietSeconds;
        }
        return new Result(perRound, clock.Elapsed.TotalSeconds, System.Runtime.JitInfo.GetCompiledMethodCount() - first, settled);
    }
}
