using System.Diagnostics;
using System.Runtime.InteropServices;
using Pargs.Checkpoints;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// <see cref="FreedHeapPages"/>: freed heap blocks with live blocks between them (the holes a decoding step's
/// tensors leave) stay resident until trimmed, and a trim hands them back; trims are rate-limited to one per interval.
/// </summary>
[Collection(ResidentMemoryCollection.Name)]
public class FreedHeapPagesTests
{
    static long ResidentKiB()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        throw new InvalidOperationException("no VmRSS");
    }

    [Fact]
    public unsafe void A_trim_returns_the_pages_of_freed_heap_holes()
    {
        if (!OperatingSystem.IsLinux()) return;
        // 400 blocks of 100 KB (below glibc's smallest mmap threshold, so they come from the heap), every other one freed:
        // ~19.5 MiB of holes the heap cannot shrink past. WHY blocks of the same size between the holes, not small ones:
        // in a long-running process (the whole suite) small requests are served from free chunks elsewhere in the heap,
        // so small separators land elsewhere, the freed blocks coalesce into the heap's top and glibc returns them at
        // free, before the trim could.
        const int blocks = 200, size = 100 << 10;
        var large = new nint[blocks];
        var kept = new nint[blocks];
        for (int i = 0; i < blocks; i++)
        {
            large[i] = (nint)NativeMemory.Alloc(size);
            new Span<byte>((void*)large[i], size).Fill(1); // resident
            kept[i] = (nint)NativeMemory.Alloc(size);
        }
        foreach (var p in large) NativeMemory.Free((void*)p);
        Thread.Sleep((int)FreedHeapPages.Interval.TotalMilliseconds + 10); // past the rate limit of an earlier trim
        long before = ResidentKiB();
        Assert.True(FreedHeapPages.Trim());
        long after = ResidentKiB();
        foreach (var p in kept) NativeMemory.Free((void*)p);
        Assert.True(before - after >= 8 << 10, $"resident {before} KiB before the trim, {after} KiB after: expected ≥ 8 MiB of the 19.5 MiB of holes back");
    }

    [Fact]
    public void Trims_are_at_most_one_per_interval()
    {
        if (!OperatingSystem.IsLinux()) return;
        var clock = Stopwatch.StartNew();
        int trims = 0;
        for (int i = 0; i < 2000; i++) if (FreedHeapPages.Trim()) trims++;
        double intervals = clock.Elapsed / FreedHeapPages.Interval;
        Assert.True(trims <= intervals + 1, $"{trims} trims in {clock.ElapsedMilliseconds} ms");
    }
}
