using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pargs.Checkpoints;

/// <summary>
/// Hands the pages of freed heap memory back to the system between decoding steps (glibc's <c>malloc_trim</c>).
/// WHY: a step allocates and frees [rows, vocabulary] float tensors in libtorch (the logits and their log-softmax: 501 KB
/// each at a 128k vocabulary). Once glibc has seen one such block freed it serves the next from its heap instead of a
/// fresh mapping, and the small allocations of the step land in the holes they leave, so the heap grows by ~0.5 MiB a
/// token until it settles 5–9 MiB higher — resident memory that holds nothing, counted in the high-water mark the ≤ 1.1 ×
/// file-size budget of a stored-precision model is measured by (docs/benchmarks.md, "Resident memory, fourth pass").
/// Trimming returns every whole free page inside the heap; it costs ~0.2–0.8 ms, so it runs at most once per
/// <see cref="Interval"/> of wall time (≤ ~1 % of any step rate: a step of the 1B shape takes tens of milliseconds, one of
/// stories260K a tenth of one). Linux with glibc only; elsewhere a no-op. The AppContext switch <see cref="KeepSwitch"/>
/// turns it off (to measure what it saves).
/// </summary>
public static class FreedHeapPages
{
    /// <summary>AppContext switch: true keeps freed heap pages resident.</summary>
    public const string KeepSwitch = "Pargs.KeepFreedHeapPages";

    /// <summary>Least wall time between two trims.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(50);

    static long _lastTrim; // Stopwatch timestamp of the last trim; 0 = never
    static int _state = OperatingSystem.IsLinux() ? 0 : -1; // 0 unknown, 1 enabled, -1 disabled

    /// <summary>
    /// Trims the heap if the last trim is at least <see cref="Interval"/> ago; returns whether it did. Never throws: without
    /// glibc's entry point (musl) or with the switch on, nothing is done.
    /// </summary>
    public static bool Trim()
    {
        if (_state < 0) return false;
        if (_state == 0) _state = AppContext.TryGetSwitch(KeepSwitch, out bool keep) && keep ? -1 : 1;
        if (_state < 0) return false;
        long now = Stopwatch.GetTimestamp(), last = Interlocked.Read(ref _lastTrim);
        if (last != 0 && Stopwatch.GetElapsedTime(last, now) < Interval) return false;
        if (Interlocked.CompareExchange(ref _lastTrim, now, last) != last) return false; // another thread trims now
        try
        {
            malloc_trim(0);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _state = -1;
            return false;
        }
    }

    [DllImport("libc")]
    static extern int malloc_trim(nuint pad);
}
