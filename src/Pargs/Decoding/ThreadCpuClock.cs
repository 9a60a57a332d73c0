using System.Runtime.InteropServices;

namespace Pargs.Decoding;

/// <summary>
/// The calling thread's CPU time (Linux clock_gettime(CLOCK_THREAD_CPUTIME_ID), a system call of well under a
/// microsecond); NaN elsewhere. For profiles on a shared machine, where a thread's wall time counts the time it
/// waited for a core.
/// </summary>
public static class ThreadCpuClock
{
    [DllImport("libc", EntryPoint = "clock_gettime")]
    static extern int ClockGetTime(int clock, out TimeSpec time);

    struct TimeSpec { public long Seconds, Nanoseconds; }

    const int ThreadCpuTimeClock = 3; // CLOCK_THREAD_CPUTIME_ID

    static readonly bool available = OperatingSystem.IsLinux() && Probe();

    static bool Probe()
    {
        try { return ClockGetTime(ThreadCpuTimeClock, out _) == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>Nanoseconds of CPU this thread has used; 0 where the clock is not available.</summary>
    public static long Nanoseconds() => available && ClockGetTime(ThreadCpuTimeClock, out var t) == 0 ? t.Seconds * 1_000_000_000 + t.Nanoseconds : 0;

    /// <summary>Seconds of CPU this thread has used; NaN where the clock is not available.</summary>
    public static double Seconds() => available ? Nanoseconds() * 1e-9 : double.NaN;
}
