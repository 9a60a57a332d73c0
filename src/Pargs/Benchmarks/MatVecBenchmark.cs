using System.Diagnostics;
using System.Runtime.InteropServices;
using Pargs.Decoding;
using Pargs.Models.Cpu;
using Pargs.Weights;

namespace Pargs.Benchmarks;

/// <summary>Settings of <see cref="MatVecBenchmark"/>.</summary>
public sealed record MatVecBenchmarkOptions
{
    public IReadOnlyList<int> Threads { get; init; } = new[] { 1, 2 };
    /// <summary>Layer shapes: "0.5b" (Qwen2.5-0.5B: hidden 896, ff 4864), "1b" (Llama-3.2-1B: hidden 2048, ff 8192).</summary>
    public IReadOnlyList<string> Shapes { get; init; } = new[] { "0.5b", "1b" };
    /// <summary>ggml names of the weight formats (f32 also runs the existing float32 kernel, CpuOps.MatMul).</summary>
    public IReadOnlyList<string> Formats { get; init; } = new[] { "f32", "f16", "bf16", "q8_0", "q4_0", "q4_K", "q5_K", "q6_K" };
    public double SecondsPerConfig { get; init; } = 1.0;
    /// <summary>
    /// Bytes of copies of each matrix the products cycle through. WHY: decoding streams the whole model from
    /// memory, but one layer's matrix fits in the caches (this machine's L3 is 300 MiB); cycling through more
    /// copies than the caches hold measures what a decoding step sees.
    /// </summary>
    public int WorkingSetMiB { get; init; } = 1024;
    /// <summary>
    /// Activation rows per product (1: decode's matrix × vector; 2–15: PARGS's k candidates in the reward model's
    /// sibling step, EightRowBatch; 16 and more: IntegerGemm). GB/s still counts the weight bytes read once.
    /// </summary>
    public int ActivationRows { get; init; } = 1;
}

/// <summary>
/// Matrix × vector time and weight bandwidth per storage format at the 0.5B and 1B layer shapes (ffn_up
/// [ff, hidden] and ffn_down [hidden, ff]), on each thread count: <see cref="WeightMatrix.MatVec"/> for every
/// format, and the existing float32 kernel (<see cref="MatMulJob"/>) for comparison.
/// </summary>
public static unsafe class MatVecBenchmark
{
    static readonly Dictionary<string, (int Hidden, int Ff)> KnownShapes = new() { ["0.5b"] = (896, 4864), ["1b"] = (2048, 8192) };
    const string KernelLabel = "f32 (CpuOps kernel)";

    public static BenchTable Run(MatVecBenchmarkOptions options, Action<string>? log = null)
    {
        BenchChecks.Threads(options.Threads);
        BenchChecks.KnownModels(options.Shapes, KnownShapes.Keys.ToArray());
        if (options.Formats.Count == 0) throw new PargsException("--formats: expected at least one format");
        var formats = options.Formats.Select(ParseFormat).ToList();
        if (options.SecondsPerConfig <= 0) throw new PargsException($"--seconds must be positive, got {options.SecondsPerConfig}");
        if (options.WorkingSetMiB < 1) throw new PargsException($"--working-set-mib must be at least 1, got {options.WorkingSetMiB}");
        if (options.ActivationRows is < 1 or > 4096) throw new PargsException($"--activation-rows must be 1 to 4096, got {options.ActivationRows}");

        var columns = new List<string> { "shape", "matrix [rows × cols]", "format", "bytes/weight" };
        foreach (int t in options.Threads) columns.AddRange(new[] { $"ms p10 / median ({t} thr)", $"GB/s at p10 ({t} thr)" });
        columns.Add($"speed-up vs f32 kernel (p10, {options.Threads[0]} thr)");
        columns.AddRange(options.Threads.Select(t => $"CPU ms median ({t} thr)"));
        string what = options.ActivationRows == 1 ? "one matrix × vector product" : $"one matrix × {options.ActivationRows} activation rows product";
        var table = new BenchTable($"bench matvec: {what}, weights streamed from memory", columns.ToArray());
        foreach (var shapeName in options.Shapes)
        {
            var (hidden, ff) = KnownShapes[shapeName.ToLowerInvariant()];
            foreach (var (matrixName, rows, cols) in new[] { ("ffn_up", ff, hidden), ("ffn_down", hidden, ff) })
            {
                double? kernelMs = null;
                var runs = new List<(string Label, WeightFormat Format, bool Kernel)>();
                if (formats.Contains(WeightFormat.F32)) runs.Add((KernelLabel, WeightFormat.F32, true));
                runs.AddRange(formats.Select(f => (WeightFormats.Name(f), f, false)));
                foreach (var (label, format, kernel) in runs)
                {
                    if (cols % WeightFormats.BlockElements(format) != 0)
                    {
                        // Qwen2.5-0.5B's hidden 896 is not a whole number of 256-value super-blocks: llama.cpp too stores
                        // such tensors in another type (its quantize falls back, e.g. to q5_0 / q8_0).
                        var skipped = new List<string> { shapeName, $"{matrixName} [{rows} × {cols}]", label, "—" };
                        foreach (int _ in options.Threads) skipped.AddRange(new[] { "—", "—" });
                        skipped.Add($"n/a: {cols} columns are not whole {WeightFormats.BlockElements(format)}-value blocks");
                        skipped.AddRange(options.Threads.Select(_ => "—"));
                        table.Add(skipped.ToArray());
                        continue;
                    }
                    log?.Invoke($"matvec: {shapeName} {matrixName} [{rows}×{cols}] {label}");
                    var times = Measure(format, kernel, rows, cols, options);
                    long bytes = WeightFormats.ByteCount(format, (long)rows * cols, matrixName);
                    var cells = new List<string> { shapeName, $"{matrixName} [{rows} × {cols}]", label, $"{(double)bytes / ((long)rows * cols):0.####}" };
                    foreach (var (p10, median, _) in times) cells.AddRange(new[] { $"{p10:F3} / {median:F3}", $"{bytes / (p10 * 1e6):F1}" });
                    if (kernel) kernelMs = times[0].P10;
                    cells.Add(kernelMs is { } k ? $"{k / times[0].P10:F2}×" : "—");
                    cells.AddRange(times.Select(t => $"{t.CpuMedian:F3}"));
                    table.Add(cells.ToArray());
                }
            }
        }
        table.Notes.Add($"Each format cycles through copies of its matrix filling {options.WorkingSetMiB} MiB (more than the caches), so every product reads its weights from memory, as a decoding step does; each product is timed alone for about {options.SecondsPerConfig:0.##} s per cell: 10th percentile / median.");
        table.Notes.Add("Integer formats include quantizing the input vector (Q8_0 for q8_0/q4_0, Q8_K for the K-quants) once per product, as llama.cpp does.");
        table.Notes.Add("GB/s counts weight bytes only. \"f32 (CpuOps kernel)\" is the float32 product LlamaDecodeKernel uses today (MatMulJob); \"f32\" is the same kernel through WeightMatrix.");
        return table;
    }

    static WeightFormat ParseFormat(string name)
    {
        foreach (var f in new[] { WeightFormat.F32, WeightFormat.F16, WeightFormat.BF16, WeightFormat.Q8_0, WeightFormat.Q4_0, WeightFormat.Q4_K, WeightFormat.Q5_K, WeightFormat.Q6_K })
            if (string.Equals(WeightFormats.Name(f), name, StringComparison.OrdinalIgnoreCase)) return f;
        throw new PargsException($"--formats: unknown format \"{name}\" (expected f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K)");
    }

    /// <summary>
    /// ms per product on each thread count: the 10th percentile and the median of single products. WHY the
    /// percentile leads: on a shared VM a product the host did not preempt measures the kernel and the memory,
    /// while the median also measures the neighbours (docs/benchmarks.md).
    /// </summary>
    static (double P10, double Median, double CpuMedian)[] Measure(WeightFormat format, bool kernel, int rows, int cols, MatVecBenchmarkOptions options)
    {
        long matrixBytes = WeightFormats.ByteCount(format, (long)rows * cols, "matrix");
        int copies = (int)Math.Max(1, Math.Min(4096, ((long)options.WorkingSetMiB << 20) / matrixBytes));
        byte* memory = (byte*)NativeMemory.AlignedAlloc((nuint)(matrixBytes * copies), 64);
        int n = options.ActivationRows;
        float* x = (float*)NativeMemory.AlignedAlloc((nuint)((long)n * cols * 4), 64);
        float* y = (float*)NativeMemory.AlignedAlloc((nuint)((long)n * rows * 4), 64);
        try
        {
            Fill(format, rows, cols, memory, matrixBytes, copies);
            var random = new Random(5);
            for (long i = 0; i < (long)n * cols; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
            var matrices = Enumerable.Range(0, copies)
                .Select(c => new WeightMatrix($"copy {c}", format, rows, cols, memory + c * matrixBytes, matrixBytes, null)).ToArray();
            var job = new MatMulJob();
            var product = new WeightProduct();
            void Product(WeightMatrix m)
            {
                if (kernel) job.Run(x, n, cols, (float*)m.Data, null, y, rows);
                else product.Run(m, x, n, y);
            }
            var result = new (double, double, double)[options.Threads.Count];
            for (int ti = 0; ti < options.Threads.Count; ti++)
            {
                ComputeThreads.Set(options.Threads[ti]);
                foreach (var m in matrices) Product(m); // warm-up: JIT, page faults of fresh memory
                var times = new List<double>();
                // The calling thread's CPU time per product (1 thread: the whole product's; with more, the caller's share):
                // what holds on a shared machine, where wall time also counts waiting for a core.
                var cpu = new List<double>();
                var total = Stopwatch.StartNew();
                while (total.Elapsed.TotalSeconds < options.SecondsPerConfig || times.Count < 20)
                    foreach (var m in matrices)
                    {
                        long cpuStart = ThreadCpuClock.Nanoseconds();
                        long start = Stopwatch.GetTimestamp();
                        Product(m);
                        times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                        cpu.Add((ThreadCpuClock.Nanoseconds() - cpuStart) * 1e-6);
                    }
                times.Sort();
                cpu.Sort();
                result[ti] = (times[times.Count / 10], times[times.Count / 2], cpu[cpu.Count / 2]);
            }
            return result;
        }
        finally
        {
            NativeMemory.AlignedFree(memory);
            NativeMemory.AlignedFree(x);
            NativeMemory.AlignedFree(y);
        }
    }

    /// <summary>
    /// Random weights (normal, σ 0.02) in <paramref name="format"/>: a stripe of rows is quantized with the
    /// reference quantizer and repeated (quantizing a billion values would take minutes and measure nothing
    /// more), then the matrix is copied to fill the working set.
    /// </summary>
    static void Fill(WeightFormat format, int rows, int cols, byte* memory, long matrixBytes, int copies)
    {
        long rowBytes = matrixBytes / rows;
        int stripe = Math.Min(rows, 64);
        var random = new Random(17);
        var values = new float[stripe * cols];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(0.02 * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        var stored = new Span<byte>(memory, checked((int)(stripe * rowBytes)));
        for (int r = 0; r < stripe; r++)
            WeightCodec.Encode(format, values.AsSpan(r * cols, cols), stored.Slice((int)(r * rowBytes), (int)rowBytes));
        for (int r = stripe; r < rows; r += stripe)
            stored[..(int)(Math.Min(stripe, rows - r) * rowBytes)].CopyTo(new Span<byte>(memory + r * rowBytes, (int)(Math.Min(stripe, rows - r) * rowBytes)));
        for (int c = 1; c < copies; c++)
            Buffer.MemoryCopy(memory, memory + c * matrixBytes, matrixBytes, matrixBytes);
    }
}
