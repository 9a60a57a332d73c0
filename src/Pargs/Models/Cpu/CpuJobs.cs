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
    KeptPanels? keptHead;
    readonly Action<int, int> body;

    /// <summary>
    /// Multiply–adds each thread must get for a product to split (PARGS_MATMUL_MIN_WORK). WHY 256 Ki: a head product follows a
    /// forward long enough for the worker to fall asleep, and below this a split costs its wake-up more than it saves (see Run).
    /// </summary>
    internal static long MinWorkPerThread { get; set; } = TuningVariable.Read("PARGS_MATMUL_MIN_WORK", 1L << 18, 1, 1L << 40);

    public MatMulJob() => body = (lo, hi) =>
    {
        if (keptHead is not null) CpuGemm.Multiply(x, rows, inF, w, bias, y, outF, lo, hi, keptHead);
        else CpuOps.MatMul(x, rows, inF, w, bias, y, outF, lo, hi);
    };

    /// <summary>
    /// y [rows, outF] = x [rows, inF] · wᵀ (+ bias), w [outF, inF] row-major. <paramref name="keptHead"/>: w is an LM head whose
    /// model keeps its panels (<see cref="KeptPanels.KeepsHead"/>); from <see cref="CpuGemm.TakesKeptHead"/>'s row count the
    /// product runs over them, at any size.
    /// </summary>
    public void Run(float* x, int rows, int inF, float* w, float* bias, float* y, int outF, KeptPanels? keptHead = null)
    {
        this.x = x; this.w = w; this.bias = bias; this.y = y;
        this.rows = rows; this.inF = inF; this.outF = outF;
        this.keptHead = keptHead is not null && CpuGemm.TakesKeptHead(rows) ? keptHead : null;
        this.keptHead?.For(w, inF, outF, head: true); // packed here, once, and counted as a head's (KeptPanels.HeadBytes)
        // A hand-off to a spinning worker costs about a microsecond, to a sleeping one ~10 µs (docs/benchmarks.md), and a
        // head product follows a forward long enough for the worker to fall asleep: split only when each thread gets at
        // least MinWorkPerThread multiply-adds. stories260K's head (512 × 64) stays on one thread below 16 rows (at one
        // stream the split woke the worker every step: 1.4 cores busy); the 15M shape's head (32000 × 288) always splits.
        // Over kept panels each thread's range starts on a panel (a range cut inside one computes that panel's halves twice).
        CpuThreads.For(outF, body, align: this.keptHead is null ? 4 : CpuGemm.PanelWidth, minPerThread: (int)Math.Clamp(MinWorkPerThread / Math.Max(1, (long)rows * inF), 4, int.MaxValue));
    }
}
