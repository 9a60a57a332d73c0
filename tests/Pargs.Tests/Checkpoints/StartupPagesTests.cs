using Pargs.Models;
using Pargs.Checkpoints;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// <see cref="StartupPages"/>: which mappings of /proc/self/smaps may be handed back (only a library's or an assembly's
/// clean, read-only file pages — never relocated data, writable data, JIT code, anonymous memory or the model file), and,
/// live, that releasing them lowers libtorch_cpu.so's resident code while torch keeps computing the same numbers.
/// </summary>
[Collection(ResidentMemoryCollection.Name)]
public class StartupPagesTests
{
    const string Smaps = """
        7f0000000000-7f0000100000 r-xp 00000000 08:01 1234                       /opt/app/libtorch_cpu.so
        Size:               1024 kB
        Rss:                 800 kB
        Shared_Clean:        800 kB
        Shared_Dirty:          0 kB
        Private_Dirty:         0 kB
        Anonymous:             0 kB
        VmFlags: rd ex mr mw me
        7f0000100000-7f0000110000 r--p 00100000 08:01 1234                       /opt/app/libtorch_cpu.so
        Rss:                  64 kB
        Private_Dirty:        64 kB
        Anonymous:            64 kB
        7f0000110000-7f0000120000 rw-p 00110000 08:01 1234                       /opt/app/libtorch_cpu.so
        Rss:                  64 kB
        Private_Dirty:         0 kB
        Anonymous:             0 kB
        7f0000200000-7f0000300000 r-xp 00000000 08:01 99                         /usr/share/dotnet/shared/libcoreclr.so
        Rss:                 500 kB
        Private_Dirty:         0 kB
        Anonymous:             0 kB
        7f0000300000-7f0000400000 r--s 00000000 08:01 77                         /tmp/my models/model-q8_0.gguf
        Rss:                1024 kB
        Anonymous:             0 kB
        7f0000400000-7f0000500000 r-xs 00000000 00:01 5                          /memfd:doublemapper (deleted)
        Rss:                  12 kB
        7f0000500000-7f0000600000 r-xp 00000000 08:01 1235                       /opt/app/libc10.so
        Rss:                 100 kB
        Shared_Dirty:          4 kB
        Anonymous:             0 kB
        7f0000600000-7f0000700000 r-xp 00000000 08:01 1236                       /opt/app/libLibTorchSharp.so
        Rss:                   0 kB
        Anonymous:             0 kB
        7f0000800000-7f0000900000 r--s 00000000 08:01 1237                       /opt/app/Pargs.dll
        Rss:                  40 kB
        Anonymous:             0 kB
        7f0000900000-7f0000a00000 r-xp 00000000 08:01 1238                       /usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0
        Rss:                  20 kB
        Anonymous:             0 kB
        7f0000700000-7f0000800000 rw-p 00000000 00:00 0 
        Rss:                 256 kB
        Anonymous:           256 kB
        """;

    [Fact]
    public void Only_clean_read_only_pages_of_libraries_and_assemblies_are_releasable()
    {
        var mappings = StartupPages.ParseSmaps(Smaps.Split('\n'));
        Assert.Equal(11, mappings.Count);
        var text = mappings[0];
        Assert.Equal((0x7f0000000000ul, 0x7f0000100000ul, "r-xp", "/opt/app/libtorch_cpu.so", 800L), (text.Start, text.End, text.Permissions, text.Path, text.RssKiB));
        Assert.True(text.Releasable);
        Assert.False(mappings[1].Releasable); // relocated (RELRO): its copy-on-write pages would revert to the file's bytes
        Assert.False(mappings[2].Releasable); // writable data
        Assert.True(mappings[3].Releasable); // the runtime's code: clean, read-only
        Assert.Equal("/tmp/my models/model-q8_0.gguf", mappings[4].Path); // a path with a space is kept whole
        Assert.False(mappings[4].Releasable); // the weights: decoding reads them next
        Assert.False(mappings[5].Releasable); // JIT code in a memfd
        Assert.Equal(4, mappings[6].DirtyKiB);
        Assert.False(mappings[6].Releasable); // a dirty page
        Assert.False(mappings[7].Releasable); // nothing resident: nothing to release
        Assert.True(mappings[8].Releasable); // an assembly's image, mapped shared read-only
        Assert.True(mappings[9].Releasable); // a versioned library name (lib.so.1.0.0)
        Assert.Equal("", mappings[10].Path);
        Assert.False(mappings[10].Releasable); // anonymous memory
    }

    static long ResidentTorchCodeKiB() => StartupPages.ParseSmaps(File.ReadLines("/proc/self/smaps"))
        .Where(m => m.Permissions == "r-xp" && Path.GetFileName(m.Path) == "libtorch_cpu.so").Sum(m => m.RssKiB);

    [Fact]
    public void Releasing_lowers_libtorchs_resident_code_and_torch_computes_the_same_afterwards()
    {
        if (!OperatingSystem.IsLinux()) return; // a no-op elsewhere (nothing to measure)
        var a = HeldScalars.Arange(12, ScalarType.Float32).reshape(3, 4);
        float[] before = a.matmul(a.t()).data<float>().ToArray();
        long residentBefore = ResidentTorchCodeKiB();
        Assert.True(residentBefore > 1024, $"libtorch_cpu.so's code resident: {residentBefore} KiB"); // torch's start-up touched tens of MiB

        long released = StartupPages.Release();
        long residentAfter = ResidentTorchCodeKiB();
        Assert.True(released >= residentBefore / 2, $"released {released} KiB of {residentBefore} KiB resident");
        Assert.True(residentAfter < residentBefore / 2, $"libtorch_cpu.so's code resident {residentBefore} KiB → {residentAfter} KiB");

        // The pages come back from the file on first touch: the same products, and more ops run.
        Assert.Equal(before, a.matmul(a.t()).data<float>().ToArray());
        Assert.Equal(new[] { 14f, 126f, 366f }, a.mul(a).sum(1).data<float>().ToArray());
        Assert.Equal(3f, nn.functional.softmax(a, 1).sum().item<float>(), 5);
    }

    [Fact]
    public void The_keep_switch_releases_nothing()
    {
        AppContext.SetSwitch(StartupPages.KeepSwitch, true);
        try { Assert.Equal(0, StartupPages.Release()); }
        finally { AppContext.SetSwitch(StartupPages.KeepSwitch, false); }
    }
}

/// <summary>
/// Tests that measure this process's resident pages run alone: a test on another thread running torch re-faults the
/// library pages they release between the release and the measurement.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ResidentMemoryCollection
{
    public const string Name = "Resident memory (runs alone)";
}
