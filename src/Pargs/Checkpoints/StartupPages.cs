using System.Globalization;
using System.Runtime.InteropServices;

namespace Pargs.Checkpoints;

/// <summary>
/// Hands back to the page cache the code and read-only data pages that start-up touched and decoding may never run again.
/// WHY: loading libtorch registers its ~2,000 operators' kernels from static initialisers spread over libtorch_cpu.so's
/// 340 MiB of code, and the .NET runtime, its JIT and the assemblies page in their own start-up paths; all of it stays
/// counted in the process's resident set (≈ 40 MiB of libtorch code alone; docs/benchmarks.md, "Resident memory: where
/// the fixed part goes"), although a stored-precision decode runs a handful of torch ops. Clean, read-only file pages
/// are exactly what the kernel evicts first under memory pressure; telling it now — after loading, before the first
/// forward pages the weights in — keeps them out of the high-water mark the user's machine must hold. A page needed
/// again is read back from the page cache on first touch (a minor fault, once).
/// <para>Only mappings that cannot hold anything but the file's own bytes are released: a shared library's (.so) or an
/// assembly's (.dll) mapping that is not writable and has no anonymous (copy-on-write) or dirty pages — so relocated
/// RELRO segments, writable data, the JIT's code (an anonymous memfd) and the model's mapped weights never are. Linux
/// only; elsewhere a no-op. The AppContext switch <see cref="KeepSwitch"/> (runtimeconfig.json <c>configProperties</c>)
/// turns it off.</para>
/// </summary>
public static class StartupPages
{
    /// <summary>AppContext switch: true keeps start-up pages resident (to measure what releasing them saves).</summary>
    public const string KeepSwitch = "Pargs.KeepStartupPages";

    /// <summary>Whether <paramref name="path"/> names a shared library (lib.so, lib.so.1) or a .NET assembly (.dll): code and read-only data.</summary>
    public static bool IsCodeFile(string path)
    {
        string name = System.IO.Path.GetFileName(path);
        return name.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".so", StringComparison.Ordinal) || name.Contains(".so.", StringComparison.Ordinal);
    }

    const int MadviseDontNeed = 4; // MADV_DONTNEED: unmap the range's pages; a later touch refills them from the file

    /// <summary>A mapping of /proc/self/smaps with what decides whether its pages may be released.</summary>
    public sealed record Mapping(ulong Start, ulong End, string Permissions, string Path, long RssKiB, long AnonymousKiB, long DirtyKiB)
    {
        /// <summary>
        /// True when every resident page is the file's own bytes and nothing can write to the mapping: a shared library's
        /// or an assembly's read-only (r-x, r--) mapping with no anonymous and no dirty pages.
        /// </summary>
        public bool Releasable =>
            Permissions.Length >= 2 && Permissions[1] == '-' && Path.StartsWith('/') && !Path.EndsWith(" (deleted)", StringComparison.Ordinal)
            && AnonymousKiB == 0 && DirtyKiB == 0 && RssKiB > 0 && IsCodeFile(Path);
    }

    /// <summary>
    /// Releases the start-up pages of the libraries and assemblies mapped in this process; returns the resident KiB released
    /// (0 off Linux, with the switch on, or when nothing is mapped). Never throws: a failure leaves the pages resident.
    /// </summary>
    public static long Release()
    {
        if (!OperatingSystem.IsLinux() || (AppContext.TryGetSwitch(KeepSwitch, out bool keep) && keep)) return 0;
        try
        {
            long released = 0;
            foreach (var mapping in ParseSmaps(File.ReadLines("/proc/self/smaps")).Where(m => m.Releasable))
                if (madvise((nint)mapping.Start, (nuint)(mapping.End - mapping.Start), MadviseDontNeed) == 0) released += mapping.RssKiB;
            FreedHeapPages.Trim(); // and the heap pages loading freed (its own switch)
            return released;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or DllNotFoundException or EntryPointNotFoundException)
        {
            return 0; // an unreadable /proc (a sandbox) or no libc entry point: nothing released, nothing broken
        }
    }

    /// <summary>The mappings of a /proc/PID/smaps text (header lines "start-end perms offset dev inode [path]" and their fields).</summary>
    public static List<Mapping> ParseSmaps(IEnumerable<string> lines)
    {
        var mappings = new List<Mapping>();
        (ulong Start, ulong End, string Permissions, string Path)? header = null;
        long rss = 0, anonymous = 0, dirty = 0;
        void Flush()
        {
            if (header is { } h) mappings.Add(new Mapping(h.Start, h.End, h.Permissions, h.Path, rss, anonymous, dirty));
            rss = anonymous = dirty = 0;
        }
        foreach (string line in lines)
        {
            int colon = line.IndexOf(':');
            int dash = line.IndexOf('-');
            if (dash > 0 && (colon < 0 || dash < colon) && line.IndexOf(' ') > dash)
            {
                Flush();
                // "7f28...-7f28... r-xp 00000000 08:01 1234   /path/with spaces.so"
                var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                ulong start = ulong.Parse(fields[0][..dash], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                ulong end = ulong.Parse(fields[0][(dash + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                header = (start, end, fields[1], fields.Length > 5 ? fields[5].Trim() : "");
                continue;
            }
            if (colon <= 0) continue;
            string key = line[..colon];
            if (key is not ("Rss" or "Anonymous" or "Private_Dirty" or "Shared_Dirty")) continue;
            long kib = long.Parse(line[(colon + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            if (key == "Rss") rss = kib;
            else if (key == "Anonymous") anonymous = kib;
            else dirty += kib;
        }
        Flush();
        return mappings;
    }

    [DllImport("libc", SetLastError = true)]
    static extern int madvise(nint address, nuint length, int advice);
}
