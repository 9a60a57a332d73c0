using static TorchSharp.torch;

namespace Pargs.Models.Cpu;

/// <summary>
/// nn.functional.linear for the few rows of a decoding step (the LM head: 32000 × hidden weights streamed for
/// one row), on <see cref="CpuThreads"/>. Returns null when the inputs are not what the kernel handles
/// (gradients wanted, not float32, not contiguous, too many rows), and the caller uses torch.
/// </summary>
public static unsafe class CpuLinear
{
    /// <summary>Rows up to which the kernel beats libtorch's GEMM; above it the product is compute-bound.</summary>
    public const int MaxRows = 32;

    [ThreadStatic] static MatMulJob? job;

    /// <summary>
    /// x [..., inF] · weightᵀ (+ bias) → [..., outF], or [...] with <paramref name="squeezeOutput"/> (a one-output
    /// head such as a reward model's score, without a separate squeeze). Every TorchSharp call here costs about a
    /// microsecond, which for a ten-row score head is the whole product: so the shape is read once.
    /// <paramref name="keptHead"/>: weight is an LM head whose model keeps its CpuGemm panels (<see cref="KeptPanels.KeepsHead"/>).
    /// </summary>
    public static Tensor? TryForward(Tensor x, Tensor weight, Tensor? bias = null, bool squeezeOutput = false, KeptPanels? keptHead = null)
    {
        if (!CpuKernels.Enabled || is_grad_enabled() || weight.dim() != 2) return null;
        var shape = x.shape;
        long outF = weight.size(0), inF = weight.size(1);
        if (shape.Length < 1 || shape[^1] != inF || (squeezeOutput && outF != 1)) return null;
        long rows = 1;
        for (int i = 0; i < shape.Length - 1; i++) rows *= shape[i];
        if (rows < 1 || rows > MaxRows) return null;
        float* w = TensorMemory.Floats(weight), b = bias is null ? null : TensorMemory.Floats(bias);
        if (w == null || (bias is not null && b == null)) return null;
        float* xp = TensorMemory.Floats(x); // null when not contiguous float32
        // A contiguous copy is held (and freed) here: outside a dispose scope nothing else would keep it alive
        // while the kernel reads it, and the GC could finalize it mid-product.
        using var copy = xp == null && x.dtype == ScalarType.Float32 ? x.contiguous() : null;
        if (copy is not null) xp = TensorMemory.Floats(copy);
        if (xp == null) return null;
        if (squeezeOutput) shape = shape[..^1];
        else shape[^1] = outF;
        var y = empty(shape, dtype: ScalarType.Float32);
        (job ??= new MatMulJob()).Run(xp, (int)rows, (int)inF, w, b, TensorMemory.Floats(y), (int)outF, keptHead);
        return y;
    }
}

/// <summary>
/// The switch for Pargs' own CPU kernels: on by default; <see cref="Suppress"/> turns them off for the
/// current flow of execution only (the torch reference in tests and benchmarks), not for other threads.
/// </summary>
public static class CpuKernels
{
    static readonly AsyncLocal<bool> suppressed = new();

    /// <summary>Process-wide switch (e.g. to rule the kernels out when chasing a numerical difference).</summary>
    public static bool Globally { get; set; } = true;

    public static bool Enabled => Globally && !suppressed.Value;

    [ThreadStatic] static long forwardsOnThisThread;

    /// <summary>Decode-kernel forwards run on the calling thread so far: lets a test prove the kernel, not torch, ran.</summary>
    public static long ForwardsOnThisThread => forwardsOnThisThread;

    internal static void CountForward() => forwardsOnThisThread++;

    /// <summary>Runs torch's ops instead of the kernels until the returned scope is disposed.</summary>
    public static IDisposable Suppress()
    {
        bool before = suppressed.Value;
        suppressed.Value = true;
        return new Restore(() => suppressed.Value = before);
    }

    sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }
}
