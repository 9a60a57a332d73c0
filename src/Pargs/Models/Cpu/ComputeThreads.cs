using TorchSharp;

namespace Pargs.Models.Cpu;

/// <summary>One setting for every thread pool Pargs computes on: libtorch's (prefill, training) and <see cref="CpuThreads"/> (decode kernels).</summary>
public static class ComputeThreads
{
    public static void Set(int threads)
    {
        if (threads < 1) throw new PargsException($"--threads must be at least 1, got {threads}");
        // The kernels' workers spin while they wait for work: more threads than CPUs only take turns, and a few
        // thousand made a 4-token generation look hung.
        if (threads > Environment.ProcessorCount)
            throw new PargsException($"--threads {threads} is more than this machine's {Environment.ProcessorCount} logical CPUs");
        torch.set_num_threads(threads);
        CpuThreads.Count = threads;
    }
}
