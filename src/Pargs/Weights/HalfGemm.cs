using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// The product of an F16 or BF16 weight matrix with many activation rows (a prefill): y [n, rows] = x [n, cols] · Wᵀ
/// as a blocked float32 GEMM. Sixteen weight rows at a time are converted once into a float <em>panel</em>
/// (element k of the sixteen rows side by side: two vectors), and each panel is multiplied by four activation rows
/// at a time as outer products — per element, two panel loads, four broadcasts and eight FMAs into eight
/// accumulators that stay in registers for the whole row. WHY: the one-row product converts each half inside the
/// dot product (~14 operations per eight halves without F16C) for every activation row and ends every output in a
/// horizontal sum; here a half is converted once per 128 activation rows and no horizontal sum is left. The panel
/// lives in a thread's scratch; the weights stay views into the file.
/// </summary>
public sealed unsafe class HalfGemm
{
    public const int PanelRows = 16;
    /// <summary>
    /// Activation rows per pass over a thread's panels. The panel conversion is paid once per pass, and at 128 rows
    /// it cost about half of the multiply-adds for 4864-long rows: a whole 512-token prefill is one pass.
    /// </summary>
    const int ChunkRows = 512;
    /// <summary>From this many activation rows on, a product takes the GEMM.</summary>
    public const int MinRows = 16;

    readonly Action<int, int> body;
    WeightMatrix matrix = null!;
    float* x, y;
    int n;

    public HalfGemm() => body = Panels;

    public static bool Takes(WeightFormat format, int n)
        => n >= MinRows && Fma.IsSupported && Avx2.IsSupported && format is WeightFormat.F16 or WeightFormat.BF16;

    /// <summary>y [n, rows] = x [n, cols] · Wᵀ, split by panels over <see cref="Models.Cpu.CpuThreads"/>.</summary>
    public void Run(WeightMatrix m, float* x, int n, float* y)
    {
        matrix = m;
        this.x = x;
        this.y = y;
        this.n = n;
        Models.Cpu.CpuThreads.For((m.Rows + PanelRows - 1) / PanelRows, body);
    }

    [ThreadStatic] static float[]? panelScratch, rowScratch;

    // Fully optimised from the first call (no tier-0 or OSR code around the tiles: a prefill calls this a few times only).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Panels(int lo, int hi)
    {
        var m = matrix;
        int cols = m.Cols, rows = m.Rows;
        bool f16 = m.Format == WeightFormat.F16;
        if (panelScratch is null || panelScratch.Length < cols * PanelRows) panelScratch = GC.AllocateUninitializedArray<float>(cols * PanelRows, pinned: true);
        if (rowScratch is null || rowScratch.Length < cols) rowScratch = GC.AllocateUninitializedArray<float>(cols, pinned: true);
        fixed (float* panel = panelScratch, row = rowScratch)
            for (int first = 0; first < n; first += ChunkRows)
            {
                int last = Math.Min(n, first + ChunkRows);
                for (int p = lo; p < hi; p++)
                {
                    int row0 = p * PanelRows, valid = Math.Min(PanelRows, rows - row0);
                    for (int lane = 0; lane < PanelRows; lane++)
                    {
                        var converted = new Span<float>(row, cols);
                        if (lane >= valid) converted.Clear(); // rows past the matrix: zeros, never stored
                        else if (f16) Float16.ToFloats(new ReadOnlySpan<ushort>(m.Row(row0 + lane), cols), converted);
                        else BFloat16.ToFloats(new ReadOnlySpan<ushort>(m.Row(row0 + lane), cols), converted);
                        float* destination = panel + lane;
                        for (int k = 0; k < cols; k++) destination[k * PanelRows] = row[k];
                    }
                    int r = first;
                    if (Avx512F.IsSupported)
                        for (; r + 8 <= last; r += 8) Tile8Wide(panel, cols, x + (long)r * cols, y + (long)r * rows + row0, rows, valid);
                    for (; r + 4 <= last; r += 4) Tile4(panel, cols, x + (long)r * cols, y + (long)r * rows + row0, rows, valid);
                    for (; r < last; r++) Tile1(panel, cols, x + (long)r * cols, y + (long)r * rows + row0, valid);
                }
            }
    }

    /// <summary>16 panel rows × four activation rows (<paramref name="cols"/> apart), stored at y + j·<paramref name="yStride"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    static void Tile4(float* panel, int cols, float* x, float* y, int yStride, int valid)
    {
        var a0 = Vector256<float>.Zero; var b0 = a0; var a1 = a0; var b1 = a0; var a2 = a0; var b2 = a0; var a3 = a0; var b3 = a0;
        float* x0 = x, x1 = x + cols, x2 = x + 2 * cols, x3 = x + 3 * cols;
        float* w = panel;
        for (int k = 0; k < cols; k++, w += PanelRows)
        {
            var w0 = Avx.LoadVector256(w);
            var w1 = Avx.LoadVector256(w + 8);
            var v = Vector256.Create(x0[k]);
            a0 = Fma.MultiplyAdd(w0, v, a0); b0 = Fma.MultiplyAdd(w1, v, b0);
            v = Vector256.Create(x1[k]);
            a1 = Fma.MultiplyAdd(w0, v, a1); b1 = Fma.MultiplyAdd(w1, v, b1);
            v = Vector256.Create(x2[k]);
            a2 = Fma.MultiplyAdd(w0, v, a2); b2 = Fma.MultiplyAdd(w1, v, b2);
            v = Vector256.Create(x3[k]);
            a3 = Fma.MultiplyAdd(w0, v, a3); b3 = Fma.MultiplyAdd(w1, v, b3);
        }
        Store(a0, b0, y, valid);
        Store(a1, b1, y + yStride, valid);
        Store(a2, b2, y + 2L * yStride, valid);
        Store(a3, b3, y + 3L * yStride, valid);
    }

    /// <summary>
    /// With AVX-512: the 16 panel rows as one 512-bit vector times eight activation rows — per element one panel load,
    /// eight broadcasts and eight FMAs of twice the width (two 512-bit FMA pipes on the CPUs that have them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    static void Tile8Wide(float* panel, int cols, float* x, float* y, int yStride, int valid)
    {
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0; var a6 = a0; var a7 = a0;
        float* x0 = x, x1 = x + cols, x2 = x + 2 * cols, x3 = x + 3 * cols, x4 = x + 4 * cols, x5 = x + 5 * cols, x6 = x + 6 * cols, x7 = x + 7 * cols;
        float* w = panel;
        for (int k = 0; k < cols; k++, w += PanelRows)
        {
            var wk = Avx512F.LoadVector512(w);
            a0 = Avx512F.FusedMultiplyAdd(wk, Vector512.Create(x0[k]), a0);
            a1 = Avx512F.FusedMultiplyAdd(wk, Vector512.Create(x1[k]), a1);
            a2 = Avx512F.FusedMultiplyAdd(wk, Vector512.Create(x2[k]), a2);
            a3 = Avx512F.FusedMultiplyAdd(wk, Vector512.Create(x3[k]), a3);
            a4 = Avx512F.FusedMultiplyAdd(wk, Vector512.Create(x4[k]), a4);
            a5 = Avx512F.FusedMultiplyAdd(wk, Vector512.Create(x5[k]), a5);
            a6 = Avx512F.FusedMultiplyAdd(wk, Vector512.Create(x6[k]), a6);
            a7 = Avx512F.FusedMultiplyAdd(wk, Vector512.Create(x7[k]), a7);
        }
        Store(a0.GetLower(), a0.GetUpper(), y, valid);
        Store(a1.GetLower(), a1.GetUpper(), y + yStride, valid);
        Store(a2.GetLower(), a2.GetUpper(), y + 2L * yStride, valid);
        Store(a3.GetLower(), a3.GetUpper(), y + 3L * yStride, valid);
        Store(a4.GetLower(), a4.GetUpper(), y + 4L * yStride, valid);
        Store(a5.GetLower(), a5.GetUpper(), y + 5L * yStride, valid);
        Store(a6.GetLower(), a6.GetUpper(), y + 6L * yStride, valid);
        Store(a7.GetLower(), a7.GetUpper(), y + 7L * yStride, valid);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    static void Tile1(float* panel, int cols, float* x, float* y, int valid)
    {
        var a = Vector256<float>.Zero; var b = a;
        float* w = panel;
        for (int k = 0; k < cols; k++, w += PanelRows)
        {
            var v = Vector256.Create(x[k]);
            a = Fma.MultiplyAdd(Avx.LoadVector256(w), v, a);
            b = Fma.MultiplyAdd(Avx.LoadVector256(w + 8), v, b);
        }
        Store(a, b, y, valid);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(Vector256<float> low, Vector256<float> high, float* y, int valid)
    {
        if (valid == PanelRows)
        {
            low.Store(y);
            high.Store(y + 8);
            return;
        }
        for (int i = 0; i < valid; i++) y[i] = i < 8 ? low.GetElement(i) : high.GetElement(i - 8);
    }
}
