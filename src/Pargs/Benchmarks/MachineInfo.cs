using System.Diagnostics;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>What a benchmark number depends on: the machine, the runtimes and how busy the CPU was.</summary>
public sealed record MachineInfo(string CpuModel, int LogicalCpus, string Memory, string Os, string DotNet,
                                 string TorchSharp, string LoadAverage)
{
    public static MachineInfo Current() => new(
        ProcField("/proc/cpuinfo", "model name") ?? RuntimeInformation.ProcessArchitecture.ToString(),
        Environment.ProcessorCount,
        ProcField("/proc/meminfo", "MemTotal") ?? "unknown",
        RuntimeInformation.OSDescription,
        RuntimeInformation.FrameworkDescription,
        typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown",
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown");

    public IEnumerable<(string Name, string Value)> Rows(string threads) => new[]
    {
        ("CPU", CpuModel), ("logical CPUs (nproc)", LogicalCpus.ToString()), ("memory", Memory), ("OS", Os),
        (".NET", DotNet), ("TorchSharp", TorchSharp), ("torch threads", threads),
        ("load average at start (1/5/15 min)", LoadAverage),
    };

    /// <summary>Peak resident memory of this process so far (VmHWM), in MiB; falls back to PeakWorkingSet64.</summary>
    public static double PeakMemoryMiB()
    {
        var hwm = ProcField("/proc/self/status", "VmHWM");
        if (hwm is not null && long.TryParse(hwm.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], out long kb))
            return kb / 1024.0;
        return Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
    }

    static string? ProcField(string file, string key)
    {
        if (!File.Exists(file)) return null;
        foreach (var line in File.ReadLines(file))
            if (line.StartsWith(key, StringComparison.Ordinal) && line.IndexOf(':') is int colon and > 0)
                return line[(colon + 1)..].Trim();
        return null;
    }
}
