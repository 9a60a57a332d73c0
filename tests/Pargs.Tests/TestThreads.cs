using System.Runtime.CompilerServices;

namespace Pargs.Tests;

/// <summary>
/// Tests run torch on one thread: xunit already runs test classes in parallel, and torch's own thread pool
/// on top of that oversubscribes a 2-core machine (forwards measured up to ~100× slower under contention).
/// One thread also keeps float summation order, hence results, identical from run to run.
/// </summary>
static class TestThreads
{
    [ModuleInitializer]
    internal static void OneTorchThread() => TorchSharp.torch.set_num_threads(1);
}
