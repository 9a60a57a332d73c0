using TorchSharp;

namespace Pargs.Models.Cpu;

/// <summary>One setting for every thread pool Pargs computes on: libtorch's (prefill, training) and <see cref="CpuThreads"/> (decode kernels).</summary>
public static class ComputeThreads
{
    public static void Set(int threads)
    {
        if (threads < 1) throw new PargsException($"--threads must be at least 1, got {threads}");
        torch.set_num_threads(threads);
        CpuThreads.Count = threads;
    }
}
