namespace Pargs.Models.Cpu;

/// <summary>
/// A linear layer split over <see cref="CpuThreads"/> by output features. The arguments live in fields and the
/// delegate is made once, so a decoding step hands hundreds of jobs to the workers without allocating.
/// Not thread-safe: one owner (a kernel instance, or one per thread).
/// </summary>
public sealed unsafe class MatMulJob
{
    float* x, w, bias, y;
    int rows, inF, outF;
    readonly Action<int, int> body;

    public MatMulJob() => body = (lo, hi) => CpuOps.MatMul(x, rows, inF, w, bias, y, outF, lo, hi);

    /// <summary>y [rows, outF] = x [rows, inF] · wᵀ (+ bias), w [outF, inF] row-major.</summary>
    public void Run(float* x, int rows, int inF, float* w, float* bias, float* y, int outF)
    {
        this.x = x; this.w = w; this.bias = bias; this.y = y;
        this.rows = rows; this.inF = inF; this.outF = outF;
        // A hand-off to a spinning worker costs about a microsecond: split only when each thread gets at least
        // ~16K multiply-adds (a few microseconds). One row of a stories260K layer stays on one thread; its ten
        // sibling candidates, or any 110M product, are split.
        CpuThreads.For(outF, body, align: 4, minPerThread: Math.Max(4, (1 << 14) / Math.Max(1, rows * inF)));
    }
}
