using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Pargs.Decoding;

/// <summary>
/// A worker's time summed by phase, <typeparamref name="TPhase"/> an enum of the phases in the order the work runs them:
/// the working thread's CPU time (<see cref="ThreadCpuClock"/>: on a shared machine a phase's wall time also counts the
/// time the thread waited for a core) and its wall time. A profiling aid (PARGS_SERVE_PROFILE=1): off (null), the work
/// reads no clock. Written by the one thread that does the work; read from another (/metrics), hence the interlocked sums.
/// </summary>
public abstract class PhaseTimes<TPhase> where TPhase : struct, Enum
{
    public static readonly IReadOnlyList<TPhase> Phases = Enum.GetValues<TPhase>();

    readonly long[] wallTicks = new long[Phases.Count];
    readonly long[] cpuNanoseconds = new long[Phases.Count];

    /// <summary>A moment on both clocks.</summary>
    public readonly record struct Stamp(long WallTicks, long CpuNanoseconds);

    public static Stamp Now() => new(Stopwatch.GetTimestamp(), ThreadCpuClock.Nanoseconds());

    static int Index(TPhase phase) => Unsafe.As<TPhase, int>(ref phase);

    /// <summary>Adds the time since <paramref name="start"/> to <paramref name="phase"/> and moves <paramref name="start"/> to now.</summary>
    public void Add(TPhase phase, ref Stamp start)
    {
        var now = Now();
        Interlocked.Add(ref wallTicks[Index(phase)], now.WallTicks - start.WallTicks);
        Interlocked.Add(ref cpuNanoseconds[Index(phase)], now.CpuNanoseconds - start.CpuNanoseconds);
        start = now;
    }

    public double WallSeconds(TPhase phase) => (double)Interlocked.Read(ref wallTicks[Index(phase)]) / Stopwatch.Frequency;
    public double CpuSeconds(TPhase phase) => Interlocked.Read(ref cpuNanoseconds[Index(phase)]) * 1e-9;
}
