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
    // Guards the hook's state only. Never held while torch runs: SetNow runs torch's static constructor, whose P/Invokes
    // call Resolve, possibly on another thread (a lock here and a class-constructor lock there would deadlock).
    static readonly object gate = new();
    static int pending;
    static int applied; // 1 once the resolver set the count on the library it resolved
    static bool hooked, unhookable;
    [ThreadStatic] static bool resolving;

    public static void Apply(int threads)
    {
        bool now;
        lock (gate)
        {
            // A full fence before reading `applied`: either the resolver claims after this write (and reads this count) or
            // this call sees it claimed (and sets the count itself).
            Interlocked.Exchange(ref pending, threads);
            now = unhookable || !OperatingSystem.IsLinux() || Volatile.Read(ref applied) == 1 || LibTorchMapped();
            if (!now && !hooked)
            {
                hooked = true;
                // Not typeof(torch): that would load the TorchSharp assembly, which a host-engine decode never needs either.
                var loaded = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(IsTorchSharp);
                if (loaded is not null) now = !Hook(loaded);
                else AppDomain.CurrentDomain.AssemblyLoad += (_, e) =>
                {
                    if (!IsTorchSharp(e.LoadedAssembly)) return;
                    bool failed;
                    lock (gate) failed = !Hook(e.LoadedAssembly);
                    if (failed) SetNow(Volatile.Read(ref pending));
                };
            }
        }
        if (now) SetNow(threads);
    }

    static bool IsTorchSharp(Assembly assembly) => assembly.GetName().Name == "TorchSharp";

    /// <summary>
    /// Registers the resolver on TorchSharp's assembly (before any of its P/Invokes resolved: it was just loaded, or libtorch
    /// is not mapped); false when another resolver owns its imports (then the caller sets the count the plain way, outside the lock).
    /// </summary>
    static bool Hook(Assembly torchSharp)
    {
        try
        {
            NativeLibrary.SetDllImportResolver(torchSharp, Resolve);
            return true;
        }
        catch (InvalidOperationException)
        {
            unhookable = true;
            return false;
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
        // The runtime asks again for each P/Invoke's first call: once the count is set, its own probing finds the loaded library.
        if (name != NativeLibraryName || resolving || Volatile.Read(ref applied) == 1) return IntPtr.Zero;
        resolving = true;
        try
        {
            // Where TryLoad fails, the runtime's own probing loads the library for this call; a later resolution (the next
            // P/Invoke's first call) finds it mapped and sets the count then, so --threads is late, never lost.
            if (!NativeLibrary.TryLoad(name, assembly, searchPath, out var handle) && !TryMapped(out handle)) return IntPtr.Zero;
            if (NativeLibrary.TryGetExport(handle, "THSTorch_set_num_threads", out var setThreads) && Interlocked.CompareExchange(ref applied, 1, 0) == 0)
                ((delegate* unmanaged<int, void>)setThreads)(Volatile.Read(ref pending));
            return handle;
        }
        finally { resolving = false; }
    }

    /// <summary>TorchSharp's native library when something already mapped it (its path from /proc/self/maps).</summary>
    static bool TryMapped(out IntPtr handle)
    {
        handle = IntPtr.Zero;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int at = line.IndexOf('/');
                if (at >= 0 && line.EndsWith("lib" + NativeLibraryName + ".so", StringComparison.Ordinal))
                    return NativeLibrary.TryLoad(line[at..], out handle);
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return false;
    }
}
