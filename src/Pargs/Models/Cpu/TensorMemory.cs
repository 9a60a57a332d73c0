using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Cpu;

/// <summary>
/// Raw access to the memory of CPU tensors, for the kernels that read weights and write the KV cache
/// in place. Only contiguous tensors are handed out: a pointer plus row-major indexing must mean the tensor.
/// </summary>
public static unsafe class TensorMemory
{
    [DllImport("LibTorchSharp"), SuppressGCTransition]
    static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>
    /// Where <paramref name="t"/>'s first element is, without any check: a plain native call (TorchSharp's
    /// properties each cost a few native calls with error checks, which a decoding step cannot afford per weight).
    /// For tensors whose layout is known (validated before, or made by Pargs itself).
    /// </summary>
    public static IntPtr Address(Tensor t) => THSTensor_data(t.Handle);

    /// <summary>The first element of a contiguous CPU float32 tensor, or null when it is not one.</summary>
    public static float* Floats(Tensor t) => (float*)Checked(t, ScalarType.Float32);

    /// <summary>The first element of a contiguous CPU int64 tensor, or null when it is not one.</summary>
    public static long* Int64s(Tensor t) => (long*)Checked(t, ScalarType.Int64);

    /// <summary>The first element of a contiguous CPU bool tensor, or null when it is not one.</summary>
    public static bool* Bools(Tensor t) => (bool*)Checked(t, ScalarType.Bool);

    /// <summary>
    /// All values of a contiguous CPU float32 tensor, in place (valid while the tensor lives): for copying a whole [B, V]
    /// tensor to the host at once, where TorchSharp's data&lt;T&gt;().ToArray() reads element by element (milliseconds for
    /// a few rows of a 32k vocabulary).
    /// </summary>
    public static ReadOnlySpan<float> FloatSpan(Tensor t)
        => new(Floats(t) is var p && p != null ? p : throw new ArgumentException("not a contiguous CPU float32 tensor", nameof(t)), checked((int)t.numel()));

    /// <summary><see cref="FloatSpan"/> for a contiguous CPU int64 tensor.</summary>
    public static ReadOnlySpan<long> Int64Span(Tensor t)
        => new(Int64s(t) is var p && p != null ? p : throw new ArgumentException("not a contiguous CPU int64 tensor", nameof(t)), checked((int)t.numel()));

    static void* Checked(Tensor t, ScalarType dtype)
        => t.dtype == dtype && t.device_type == DeviceType.CPU && t.is_contiguous() ? (void*)THSTensor_data(t.Handle) : null;
}
