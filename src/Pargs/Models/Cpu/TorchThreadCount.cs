using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Pargs.Models.Cpu;

/// <summary>
/// libtorch's intra-op thread count, applied when libtorch is loaded rather than by loading it. WHY: calling
/// <c>torch.set_num_threads</c> loads libtorch (~75 MiB resident: its operator registry is heap the moment the library
/// is mapped), and a decode on the host engine (<see cref="Engine.HostSession"/>) never needs it. When libtorch is not
/// mapped yet, the count waits in a resolver for TorchSharp's native library: the first call into it (torch's static
/// constructor) loads the library there and the count is set on it before anything computes. When libtorch is already
/// mapped (or where /proc/self/maps does not exist) the count is set at once.
/// </summary>
internal static unsafe class TorchThreadCount
{
    const string NativeLibraryName = "LibTorchSharp"; // TorchSharp's DllImport name
    static readonly object gate = new();
    static int pending;
    static bool hooked, unhookable, applied;
    [ThreadStatic] static bool resolving;

    public static void Apply(int threads)
    {
        lock (gate)
        {
            if (unhookable || !OperatingSystem.IsLinux() || LibTorchMapped()) { SetNow(threads); return; }
            pending = threads;
            if (hooked) return;
            hooked = true;
            // Not typeof(torch): that would load the TorchSharp assembly, which a host-engine decode never needs either.
            var loaded = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(IsTorchSharp);
            if (loaded is not null) Hook(loaded);
            else AppDomain.CurrentDomain.AssemblyLoad += (_, e) =>
            {
                if (IsTorchSharp(e.LoadedAssembly)) lock (gate) Hook(e.LoadedAssembly);
            };
        }
    }

    static bool IsTorchSharp(Assembly assembly) => assembly.GetName().Name == "TorchSharp";

    /// <summary>Registers the resolver on TorchSharp's assembly (before any of its P/Invokes resolved: it was just loaded, or libtorch is not mapped).</summary>
    static void Hook(Assembly torchSharp)
    {
        try { NativeLibrary.SetDllImportResolver(torchSharp, Resolve); }
        catch (InvalidOperationException)
        {
            unhookable = true; // another resolver owns TorchSharp's imports: set the count the plain way
            SetNow(pending);
        }
    }

    /// <summary>Whether libtorch is mapped into this process (then TorchSharp's imports are resolved already).</summary>
    public static bool LibTorchMapped()
    {
        try { return File.ReadAllText("/proc/self/maps").Contains("libtorch_cpu", StringComparison.Ordinal); }
        catch (IOException) { return true; } // unknown: behave as if loaded (set at once)
        catch (UnauthorizedAccessException) { return true; }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void SetNow(int threads) => torch.set_num_threads(threads);

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        // The runtime asks again for each P/Invoke's first call: after the first, its own probing finds the loaded library.
        if (name != NativeLibraryName || resolving || Volatile.Read(ref applied)) return IntPtr.Zero;
        resolving = true;
        try
        {
            if (!NativeLibrary.TryLoad(name, assembly, searchPath, out var handle)) return IntPtr.Zero;
            if (NativeLibrary.TryGetExport(handle, "THSTorch_set_num_threads", out var setThreads))
                lock (gate)
                {
                    if (!applied) ((delegate* unmanaged<int, void>)setThreads)(pending);
                    Volatile.Write(ref applied, true);
                }
            return handle;
        }
        finally { resolving = false; }
    }
}
