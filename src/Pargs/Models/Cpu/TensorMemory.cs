using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Cpu;

/// <summary>
/// Raw access to the memory of CPU float32 tensors, for the kernels that read weights and write the KV cache
/// in place. Only contiguous tensors are handed out: a pointer plus row-major indexing must mean the tensor.
/// </summary>
public static unsafe class TensorMemory
{
    [DllImport("LibTorchSharp")]
    static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>The first element of a contiguous CPU float32 tensor, or null when it is not one.</summary>
    public static float* Floats(Tensor t)
        => t.dtype == ScalarType.Float32 && t.device_type == DeviceType.CPU && t.is_contiguous() ? (float*)THSTensor_data(t.Handle) : null;

    /// <summary>The first element of a contiguous CPU tensor of any dtype (caller checks the dtype).</summary>
    public static void* Data(Tensor t)
        => t.is_contiguous() && t.device_type == DeviceType.CPU ? (void*)THSTensor_data(t.Handle) : null;
}
