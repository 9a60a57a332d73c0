using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// The vectorised kernel set ATen dispatches to on this machine ("AVX512", "AVX2", "DEFAULT"; torch's
/// <c>torch.backends.cpu.get_cpu_capability()</c>), read from libtorch itself rather than guessed from the CPU's flags:
/// torch also honours <c>ATEN_CPU_CAPABILITY</c>, and its own rule (AVX-512 needs VL, BW, DQ and FMA) is what decides
/// which float32 summation orders its element-wise and reduction kernels use. WHY it matters: see
/// <see cref="LlamaCppGeluTieTests"/> — which GELU inputs land on a float16 rounding tie depends on those last bits.
/// "unknown" when this libtorch does not export the C++11-ABI symbol read here (another ABI or version): no committed
/// list matches it, so the test searches.
/// </summary>
static unsafe class TorchCpuCapability
{
    static readonly Lazy<string> name = new(Read);

    public static string Name => name.Value;

    /// <summary>"AMD", "Intel" or "other": /proc/cpuinfo's vendor_id (libtorch's BLAS chooses kernels by vendor too).</summary>
    public static string Vendor => vendor.Value;

    static readonly Lazy<string> vendor = new(() =>
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("vendor_id", StringComparison.Ordinal)) ?? "";
            return line.Contains("AuthenticAMD") ? "AMD" : line.Contains("GenuineIntel") ? "Intel" : "other";
        }
        catch (IOException) { return "other"; }
    });

    public const string Unknown = "unknown";

    static string Read()
    {
        _ = get_num_threads(); // loads libtorch through TorchSharp, so libtorch_cpu is mapped
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", typeof(TorchSharp.torch).Assembly, null, out var library))
            throw new InvalidOperationException("libtorch_cpu.so is not loadable next to TorchSharp");
        // std::string at::get_cpu_capability() (libstdc++'s C++11 ABI): a 32-byte string returned through a hidden
        // pointer (SysV x86-64 sret, the first argument). The names are short, so they live in the string's own buffer
        // (no heap block to free); anything else is refused rather than read.
        if (!NativeLibrary.TryGetExport(library, "_ZN2at18get_cpu_capabilityB5cxx11Ev", out var export)) return Unknown;
        var get = (delegate* unmanaged<byte*, void>)export;
        byte* buffer = stackalloc byte[32];
        get(buffer);
        byte* data = *(byte**)buffer;
        ulong length = *(ulong*)(buffer + 8);
        if (data != buffer + 16 || length > 15)
            throw new InvalidOperationException("at::get_cpu_capability() returned a string outside its short-string buffer; not read");
        return Marshal.PtrToStringUTF8((IntPtr)data, (int)length);
    }
}
