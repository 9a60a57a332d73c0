namespace Pargs.Models.Cpu;

/// <summary>One setting for every thread pool Pargs computes on: libtorch's (prefill, training) and <see cref="CpuThreads"/> (decode kernels).</summary>
public static class ComputeThreads
{
    /// <summary>Sets the thread count, capped at the logical CPUs available; returns the count in use.</summary>
    public static int Set(int threads)
    {
        if (threads < 1) throw new PargsException($"--threads must be at least 1, got {threads}");
        // The kernels' workers spin while they wait for work: more threads than CPUs only take turns (a few
        // thousand made a 4-token generation look hung). A cap, not an error: a default of 2 must still run on a
        // 1-CPU container.
        threads = Math.Min(threads, Environment.ProcessorCount);
        TorchThreadCount.Apply(threads); // when libtorch loads, not by loading it (a host-engine decode never does)
        CpuThreads.Count = threads;
        return threads;
    }
}
