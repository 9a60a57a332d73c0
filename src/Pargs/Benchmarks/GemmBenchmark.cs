using System.Runtime.InteropServices;
using Pargs.Decoding;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>Settings of <see cref="GemmBenchmark"/>.</summary>
public sealed record GemmBenchmarkOptions
{
    /// <summary>Activation rows per product: a step's rows, or rows × k sibling candidates.</summary>
    public IReadOnlyList<int> Rows { get; init; } = new[] { 2, 4, 10, 16, 40, 160, 640 };
    /// <summary>Matrix shapes "out×in": stories260K's (64×64, 172×64, 64×172) and the 15M shape's (288×288, 768×288, 288×768).</summary>
    public IReadOnlyList<string> Shapes { get; init; } = new[] { "64x64", "172x64", "64x172", "288x288", "768x288", "288x768" };
    /// <summary>Thread CPU time spent measuring each cell.</summary>
    public double SecondsPerCell { get; init; } = 0.15;
    /// <summary>Rows of the sibling-forward table (each scores k = 10 one-token candidates over a 48-token prefix); empty: no such table.</summary>
    public IReadOnlyList<int> SiblingRows { get; init; } = new[] { 1, 16, 64 };
    /// <summary>Rows of the crossover table's sibling forwards at the 15M shape (k = 10 each: 10 … 640 candidates); empty: no such table.</summary>
    public IReadOnlyList<int> CrossoverRows { get; init; } = new[] { 1, 5, 11, 16, 64 };
    /// <summary>Rows of the crossover table's one-token steps (a batched LM step's layers: rows × 1 token over a 48-token prefix); empty: none.</summary>
    public IReadOnlyList<int> CrossoverStepRows { get; init; } = new[] { 12, 16 };
    /// <summary>The crossover table's model shape: "15m" (hidden 288, ff 768) or "42m" (stories42M: hidden 512, 8 layers, 8 heads, ff 1376).</summary>
    public string CrossoverShape { get; init; } = "15m";
    /// <summary>Prefills of the crossover table, prompts × tokens: a server step's joins (48-token prompts), and one prompt of the 15M's whole context.</summary>
    public IReadOnlyList<(int Prompts, int Tokens)> CrossoverPrefills { get; init; } = new[] { (1, 48), (2, 48), (4, 48), (1, 256) };
}

/// <summary>
/// GMAC/s of the float32 products for many rows, on one thread, by thread CPU time (robust on a shared machine): the
/// dot-product kernel CpuOps.MatMul had (4 × 3 blocks with horizontal sums), the outer-product <see cref="CpuGemm"/>,
/// and libtorch's linear.
/// </summary>
public static unsafe class GemmBenchmark
{
    public static BenchTable Run(GemmBenchmarkOptions options, Action<string>? log = null)
    {
        if (options.Rows.Count == 0 || options.Rows.Any(r => r < 1)) throw new PargsException("--rows: expected positive row counts");
        if (options.SecondsPerCell <= 0) throw new PargsException($"--seconds must be positive, got {options.SecondsPerCell}");
        var shapes = options.Shapes.Select(ParseShape).ToList();
        var table = new BenchTable("bench gemm: float32 products of many rows, one thread, GMAC/s by thread CPU time",
            "matrix [out × in]", "rows", "dot kernel (before)", "CpuGemm", "CpuGemm, kept panels", "torch linear", "CpuGemm ÷ dot", "CpuGemm ÷ torch", "kept ÷ CpuGemm");
        int savedThreads = CpuThreads.Count;
        int? savedMin = CpuGemm.FixedMinRows;
        ComputeThreads.Set(1);
        try
        {
            foreach (var (outF, inF) in shapes)
                foreach (int rows in options.Rows)
                {
                    log?.Invoke($"gemm: {outF}×{inF}, {rows} rows");
                    double dot = Measure(outF, inF, rows, "dot", options.SecondsPerCell);
                    // CpuGemm per-call and with kept panels alternated twice (the pair the kept panels are judged by).
                    double gemm = double.NaN, kept = double.NaN;
                    if (CpuGemm.Supported)
                    {
                        double[] sums = new double[2];
                        for (int round = 0; round < 4; round++) sums[round % 2] += Measure(outF, inF, rows, round % 2 == 0 ? "gemm" : "kept", options.SecondsPerCell / 2);
                        (gemm, kept) = (sums[0] / 2, sums[1] / 2);
                    }
                    double torch = Measure(outF, inF, rows, "torch", options.SecondsPerCell);
                    table.Add($"{outF} × {inF}", rows.ToString(), $"{dot:F1}", CpuGemm.Supported ? $"{gemm:F1}" : "n/a (no AVX-512 or AVX2)", CpuGemm.Supported ? $"{kept:F1}" : "n/a", $"{torch:F1}",
                              $"{gemm / dot:F2}×", $"{gemm / torch:F2}×", $"{kept / gemm:F2}×");
                }
        }
        finally
        {
            CpuGemm.FixedMinRows = savedMin;
            ComputeThreads.Set(savedThreads);
        }
        table.Notes.Add($"CpuGemm's instruction set: {CpuGemm.Isa} (PARGS_GEMM_AVX2=0 turns AVX2 off).");
        table.Notes.Add("GMAC/s = rows × out × in multiply-adds per second of the measuring thread's CPU time. The dot kernel and CpuGemm cycle through copies of the matrix filling 8 MiB (weights from L3, as in a forward); torch multiplies one copy.");
        table.Notes.Add("CpuGemm includes its per-call pack of the weights into [in, 32] panels (or of the rows below 32 against a matrix past L1); \"kept panels\": the same products over panels packed once per copy and kept (KeptPanels, a model held for inference only), read as a forward reads them, from L2/L3 — alternated with the per-call column, two rounds each. \"dot kernel\" is CpuOps.MatMul with the GEMM switched off (CpuGemm.FixedMinRows above the rows).");
        return table;
    }

    /// <summary>
    /// A reward model's whole sibling forward (BatchSession.Siblings + score head: the "RM candidates" phase of a pargs
    /// serve step), thread CPU µs per candidate with the GEMM off and on, alternated (off, on, off, on) so both see the
    /// same load: stories260K's shape (dim 64, 5 layers, 8 heads over 4 kv heads, ff 172) and the 15M shape, random weights.
    /// </summary>
    public static BenchTable RunSiblings(GemmBenchmarkOptions options, Action<string>? log = null)
    {
        var table = new BenchTable("bench gemm: a reward model's sibling forward (k = 10 candidates per row, 48-token prefix), one thread",
            "model shape", "rows × k", "µs per candidate, GEMM off", "µs per candidate, GEMM on", "off ÷ on");
        int savedThreads = CpuThreads.Count;
        int? savedMin = CpuGemm.FixedMinRows;
        ComputeThreads.Set(1);
        try
        {
            foreach (var (name, config) in new[] { ("stories260K", Stories260KShape()), ("15M", BenchmarkModels.Llama15MShape()) })
            {
                var shape = config;
                using var rm = RewardModel.Create(shape, seed: 3);
                rm.eval();
                foreach (int rows in options.SiblingRows.Where(r => r > 0))
                {
                    log?.Invoke($"gemm: sibling forward, {name}, {rows} rows");
                    using var noGrad = no_grad();
                    using var session = new BatchSession(rm.Backbone, rows);
                    using (var scope = NewDisposeScope())
                        session.Prefill(Enumerable.Range(0, rows).Select(r => BenchmarkModels.RandomPrompt(48, shape.VocabSize, 100 + r)).ToArray());
                    using var candidates = tensor(Enumerable.Range(0, rows * 10).Select(i => (long)(3 + i % (shape.VocabSize - 3))).ToArray(), rows, 10);
                    double[] sums = new double[2];
                    long[] counts = new long[2];
                    for (int round = 0; round < 4; round++)
                    {
                        int on = round % 2;
                        CpuGemm.FixedMinRows = on == 1 ? savedMin : int.MaxValue;
                        void Forward()
                        {
                            using var scope = NewDisposeScope();
                            rm.ScoreFromHidden(session.Siblings(candidates));
                        }
                        Forward(); // warm: JIT, buffers
                        long start = ThreadCpuClock.Nanoseconds(), now = start;
                        while (now - start < options.SecondsPerCell * 1e9 / 2)
                        {
                            Forward();
                            counts[on]++;
                            now = ThreadCpuClock.Nanoseconds();
                        }
                        sums[on] += now - start;
                    }
                    double off = sums[0] / counts[0] / (rows * 10) / 1e3, onUs = sums[1] / counts[1] / (rows * 10) / 1e3;
                    table.Add(name, $"{rows} × 10", $"{off:F2}", $"{onUs:F2}", $"{off / onUs:F2}×");
                }
            }
        }
        finally
        {
            CpuGemm.FixedMinRows = savedMin;
            ComputeThreads.Set(savedThreads);
        }
        table.Notes.Add("Thread CPU time of the whole forward (decode kernel: embeddings, norms, products, attention over the prefix, score head), two alternated rounds each way.");
        return table;
    }

    /// <summary>
    /// The sibling forward of <see cref="RunSiblings"/> (stories260K's shape) on one thread, on two threads splitting each
    /// product and attention (what a server step did before), and on two threads as two halves of whole rows
    /// (<see cref="BatchSession.RowSplit"/>): wall µs per forward (median) and the process's CPU µs per forward, in blocks
    /// of forwards that cycle through the three modes so all see the same load.
    /// </summary>
    public static BenchTable RunRowSplit(GemmBenchmarkOptions options, Action<string>? log = null)
    {
        var table = new BenchTable("bench gemm: a reward model's sibling forward split by rows over two threads (stories260K shape, k = 10, 48-token prefix)",
            "rows × k", "wall µs, 1 thread", "wall µs, 2 threads by product", "wall µs, 2 threads by rows", "1 thread ÷ by rows", "by product ÷ by rows",
            "process CPU µs (1 thread, by product, by rows)");
        int savedThreads = CpuThreads.Count;
        bool savedSplit = BatchSession.RowSplit;
        var process = System.Diagnostics.Process.GetCurrentProcess();
        try
        {
            var shape = Stories260KShape();
            using var rm = RewardModel.Create(shape, seed: 3);
            rm.eval();
            foreach (int rows in options.SiblingRows.Where(r => r > 0))
            {
                log?.Invoke($"gemm: row split, {rows} rows");
                using var noGrad = no_grad();
                using var session = new BatchSession(rm.Backbone, rows);
                using (var scope = NewDisposeScope())
                    session.Prefill(Enumerable.Range(0, rows).Select(r => BenchmarkModels.RandomPrompt(48, shape.VocabSize, 100 + r)).ToArray());
                using var candidates = tensor(Enumerable.Range(0, rows * 10).Select(i => (long)(3 + i % (shape.VocabSize - 3))).ToArray(), rows, 10);
                void Forward()
                {
                    using var scope = NewDisposeScope();
                    rm.ScoreFromHidden(session.Siblings(candidates));
                }
                var walls = new[] { new List<double>(), new List<double>(), new List<double>() };
                var cpu = new double[3];
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (clock.Elapsed.TotalSeconds < options.SecondsPerCell * 12)
                    for (int mode = 0; mode < 3; mode++)
                    {
                        CpuThreads.Count = mode == 0 ? 1 : 2; // torch stays on one thread (its OpenMP workers spin between ops)
                        BatchSession.RowSplit = mode == 2;
                        Forward(); // warm: a new worker thread, the second kernel's buffers
                        process.Refresh();
                        var cpuStart = process.TotalProcessorTime;
                        for (int i = 0; i < 25; i++)
                        {
                            long start = System.Diagnostics.Stopwatch.GetTimestamp();
                            Forward();
                            walls[mode].Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                        }
                        process.Refresh();
                        cpu[mode] += (process.TotalProcessorTime - cpuStart).TotalMicroseconds;
                    }
                double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }
                var (one, byProduct, byRows) = (Median(walls[0]), Median(walls[1]), Median(walls[2]));
                table.Add($"{rows} × 10", $"{one:F0}", $"{byProduct:F0}", $"{byRows:F0}", $"{one / byRows:F2}×", $"{byProduct / byRows:F2}×",
                          string.Join(", ", Enumerable.Range(0, 3).Select(m => $"{cpu[m] / walls[m].Count:F0}")));
            }
        }
        finally
        {
            BatchSession.RowSplit = savedSplit;
            ComputeThreads.Set(savedThreads);
        }
        table.Notes.Add($"Median wall time of a forward (decode kernel + score head); blocks of 25 forwards per mode, cycled for {options.SecondsPerCell * 12:F1} s per row count. A split needs ≥ 32 candidates a half (rows ≥ 8 at k = 10). Process CPU includes a waiting thread's spinning.");
        return table;
    }

    /// <summary>
    /// Where the decode kernel (CpuGemm's products) and libtorch cross over at the 15M shape (hidden 288, 6 layers, ff 768):
    /// a reward model's sibling forward of rows × 10 candidates over a 48-token prefix, and a prefill of n 48-token prompts,
    /// each through libtorch (the kernels suppressed) and through the kernel (its size limit lifted for the measurement).
    /// One thread: thread CPU µs per forward, alternated. Two threads: median wall µs per forward, libtorch on two OpenMP
    /// threads against the kernel on two <see cref="CpuThreads"/> (the siblings split by rows), in blocks cycling the modes.
    /// The kernel's own count of forwards proves which engine ran each column.
    /// </summary>
    public static BenchTable RunKernelCrossover(GemmBenchmarkOptions options, Action<string>? log = null)
    {
        var shape = options.CrossoverShape.ToLowerInvariant() switch
        {
            "15m" => BenchmarkModels.Llama15MShape(),
            "42m" => BenchmarkModels.Llama15MShape() with { HiddenSize = 512, NumLayers = 8, NumHeads = 8, NumKvHeads = 8, IntermediateSize = 1376, MaxPositions = 1024 },
            _ => throw new PargsException($"--crossover-shape: expected 15m or 42m, got \"{options.CrossoverShape}\""),
        };
        var table = new BenchTable($"bench gemm: the {options.CrossoverShape.ToUpperInvariant()} shape's forwards of many tokens, decode kernel vs libtorch (k = 10 candidates over a 48-token prefix; prefills)",
            "forward", "tokens", "torch, 1 thread (CPU µs)", "kernel, 1 thread (CPU µs)", "kernel, kept panels, 1 thread (CPU µs)", "torch ÷ kernel", "kernel ÷ kept",
            "torch, 2 threads (wall µs)", "kernel, 2 threads by rows (wall µs)", "kept panels, 2 threads by rows (wall µs)", "kernel, 2 threads by product (wall µs)", "torch ÷ kernel by rows", "by product ÷ by rows", "by rows ÷ kept by rows");
        int savedThreads = CpuThreads.Count;
        long savedWork = Models.Families.Llama.LlamaDecodeKernel.MaxSquareWork;
        bool savedSplit = BatchSession.RowSplit, savedKept = KeptPanels.Enabled;
        try
        {
            Models.Families.Llama.LlamaDecodeKernel.MaxSquareWork = long.MaxValue;
            using var rm = RewardModel.Create(shape, seed: 3);
            rm.eval();
            KeptPanels.MarkInferenceOnly(rm.Backbone); // held for inference only, as a server's (PARGS_KEPT_PANELS=0: packed per call)
            using var releasePanels = new ReleasePanels(rm.Backbone); // its packed panels go with the model, not when the GC next finds the backbone
            using var noGrad = no_grad();
            var forwards = new List<(string Name, int Tokens, Func<Action> Prepare)>();
            var held = new List<IDisposable>(); // a forward's session and candidates, freed when the next forward is prepared
            using var disposeHeld = new DisposeAll(held);
            foreach (var (rows, k) in options.CrossoverRows.Where(r => r > 0).Select(r => (r, 10)).Concat(options.CrossoverStepRows.Where(r => r > 0).Select(r => (r, 1))))
                forwards.Add((k == 1 ? $"step, {rows} × 1" : $"siblings, {rows} × 10", rows * k, () =>
                {
                    var session = new BatchSession(rm.Backbone, rows);
                    held.Add(session);
                    using (var scope = NewDisposeScope())
                        session.Prefill(Enumerable.Range(0, rows).Select(r => BenchmarkModels.RandomPrompt(48, shape.VocabSize, 100 + r)).ToArray());
                    var candidates = tensor(Enumerable.Range(0, rows * k).Select(i => (long)(3 + i * 7 % (shape.VocabSize - 3))).ToArray(), rows, k);
                    held.Add(candidates);
                    return () =>
                    {
                        using var scope = NewDisposeScope();
                        rm.ScoreFromHidden(session.Siblings(candidates));
                    };
                }));
            foreach (var (prompts, length) in options.CrossoverPrefills.Where(p => p.Prompts > 0 && p.Tokens <= shape.MaxPositions))
                forwards.Add(($"prefill, {prompts} × {length}", prompts * length, () =>
                {
                    var texts = Enumerable.Range(0, prompts).Select(r => BenchmarkModels.RandomPrompt(length, shape.VocabSize, 200 + r)).ToArray();
                    return () =>
                    {
                        using var scope = NewDisposeScope();
                        using var session = new BatchSession(rm.Backbone, prompts, length);
                        rm.ScoreFromHidden(session.Prefill(texts).unsqueeze(1));
                    };
                }));
            foreach (var (name, tokens, prepare) in forwards)
            {
                log?.Invoke($"gemm: crossover, {name}");
                disposeHeld.Dispose(); // the last forward's session: one forward's KV cache at a time, not every row count's at once
                var forward = prepare();
                // One thread: thread CPU, torch and kernel alternated twice.
                ComputeThreads.Set(1);
                double[] cpu = new double[3];
                long[] counts = new long[3];
                for (int round = 0; round < 6; round++)
                {
                    int mode = round % 3, kernel = Math.Min(mode, 1); // torch, kernel packing per call, kernel over kept panels
                    KeptPanels.Enabled = mode == 2;
                    using var off = kernel == 1 ? null : CpuKernels.Suppress();
                    forward(); // warm: JIT, buffers
                    long ranBefore = CpuKernels.ForwardsOnThisThread;
                    long start = ThreadCpuClock.Nanoseconds(), now = start;
                    while (now - start < options.SecondsPerCell * 1e9)
                    {
                        forward();
                        counts[mode]++;
                        now = ThreadCpuClock.Nanoseconds();
                    }
                    cpu[mode] += now - start;
                    if ((CpuKernels.ForwardsOnThisThread > ranBefore) != (kernel == 1))
                        throw new InvalidOperationException($"crossover {name}: the {(kernel == 1 ? "kernel" : "torch")} column ran on the other engine");
                }
                double torchOne = cpu[0] / counts[0] / 1e3, kernelOne = cpu[1] / counts[1] / 1e3, keptOne = cpu[2] / counts[2] / 1e3;
                // Two threads: wall medians, blocks of forwards cycling torch and kernel.
                // Modes: torch, kernel split by rows (BatchSession.RowSplit: siblings only; a prefill splits its products), kernel split by product.
                // Modes: torch, by rows packing per call, by product (packing per call), by rows over kept panels.
                var walls = new[] { new List<double>(), new List<double>(), new List<double>(), new List<double>() };
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (clock.Elapsed.TotalSeconds < options.SecondsPerCell * 12)
                    for (int mode = 0; mode < 4; mode++)
                    {
                        // torch's OpenMP threads only in its own column (they spin between ops), the kernels' workers only in theirs
                        TorchSharp.torch.set_num_threads(mode == 0 ? 2 : 1);
                        CpuThreads.Count = mode == 0 ? 1 : 2;
                        BatchSession.RowSplit = mode is 1 or 3;
                        KeptPanels.Enabled = mode == 3;
                        using var off = mode == 0 ? CpuKernels.Suppress() : null;
                        forward();
                        for (int i = 0; i < 5; i++)
                        {
                            long start = System.Diagnostics.Stopwatch.GetTimestamp();
                            forward();
                            walls[mode].Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                        }
                    }
                BatchSession.RowSplit = savedSplit;
                double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }
                double torchTwo = Median(walls[0]), byRows = Median(walls[1]), byProduct = Median(walls[2]), keptByRows = Median(walls[3]);
                table.Add(name, tokens.ToString(), $"{torchOne:F0}", $"{kernelOne:F0}", $"{keptOne:F0}", $"{torchOne / kernelOne:F2}×", $"{kernelOne / keptOne:F2}×",
                          $"{torchTwo:F0}", $"{byRows:F0}", $"{keptByRows:F0}", $"{byProduct:F0}", $"{torchTwo / byRows:F2}×", $"{byProduct / byRows:F2}×", $"{byRows / keptByRows:F2}×");
            }
        }
        finally
        {
            Models.Families.Llama.LlamaDecodeKernel.MaxSquareWork = savedWork;
            BatchSession.RowSplit = savedSplit;
            KeptPanels.Enabled = savedKept;
            ComputeThreads.Set(savedThreads);
        }
        table.Notes.Add($"Random weights of the shape (hidden {shape.HiddenSize}, {shape.NumLayers} layers, ff {shape.IntermediateSize}) as a reward model (score head included). tokens · hidden² above 2²² ({(1L << 22) / ((long)shape.HiddenSize * shape.HiddenSize)} tokens) is what the kernel declined before this table; every column here forces its engine (forwards of up to 32 tokens run on the kernel in any case).");
        table.Notes.Add("\"kernel\" columns pack CpuGemm's weight panels per call; \"kept panels\" columns read panels packed once and kept (KeptPanels: the model marked as held for inference only, as a server's), alternated with the others in the same loops.");
        table.Notes.Add($"Two threads: median wall µs of blocks of 5 forwards per engine, cycled for {options.SecondsPerCell * 9:F1} s per forward. By rows: the siblings as two halves of whole rows (BatchSession.RowSplit, from 32 candidates a half; a prefill is not split so, its column is by product too); by product: each product's output columns and each attention's heads over the two threads.");
        return table;
    }

    sealed class ReleasePanels(object model) : IDisposable
    {
        public void Dispose() => KeptPanels.Release(model);
    }

    sealed class DisposeAll(List<IDisposable> held) : IDisposable
    {
        public void Dispose()
        {
            held.ForEach(h => h.Dispose());
            held.Clear();
        }
    }

    /// <summary>stories260K's shape as a Llama: dim 64, 5 layers, 8 heads over 4 kv heads, ff 172, vocab 512, context 512.</summary>
    static ModelConfig Stories260KShape() => ModelConfig.FromHuggingFaceJson(new System.Text.Json.Nodes.JsonObject
    {
        ["model_type"] = "llama", ["vocab_size"] = 512, ["hidden_size"] = 64, ["intermediate_size"] = 172, ["num_hidden_layers"] = 5,
        ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["max_position_embeddings"] = 512, ["rms_norm_eps"] = 1e-5,
    }, "stories260K shape");

    static (int Out, int In) ParseShape(string shape)
    {
        var parts = shape.ToLowerInvariant().Split('x', '×');
        if (parts.Length != 2 || !int.TryParse(parts[0], out int o) || !int.TryParse(parts[1], out int i) || o < 1 || i < 1)
            throw new PargsException($"--shapes: expected out×in such as 288x288, got \"{shape}\"");
        return (o, i);
    }

    static double Measure(int outF, int inF, int rows, string kernel, double seconds)
    {
        var random = new Random(11);
        float[] x = Enumerable.Range(0, rows * inF).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        // Copies of the matrix filling 8 MiB (over this VM's 2 MiB L2), cycled through: in a forward each matrix is read
        // once per step after the rest of the model, from L2/L3, not hot in L1 as one matrix multiplied again and again.
        int copies = (int)Math.Clamp((8L << 20) / (4L * outF * inF), 1, 64);
        float[] w = Enumerable.Range(0, copies * outF * inF).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] y = new float[rows * outF];
        var keptPanels = new KeptPanels();
        using var scope = NewDisposeScope();
        var xt = tensor(x, new long[] { rows, inF });
        var wt = tensor(w[..(outF * inF)], new long[] { outF, inF }); // torch's: one copy (its linear is the yardstick, not the subject)
        using var noGrad = no_grad();
        fixed (float* xp = x, wp = w, yp = y)
        {
            float* xq = xp, yq = yp, wq = wp;
            int copy = 0;
            float* Next() => wq + (long)(copy = (copy + 1) % copies) * outF * inF;
            Action product = kernel switch
            {
                "dot" => () => { CpuGemm.FixedMinRows = int.MaxValue; CpuOps.MatMul(xq, rows, inF, Next(), null, yq, outF, 0, outF); },
                "gemm" => () => CpuGemm.Multiply(xq, rows, inF, Next(), null, yq, outF, 0, outF),
                "kept" => () => CpuGemm.Multiply(xq, rows, inF, Next(), null, yq, outF, 0, outF, keptPanels),
                _ => () => nn.functional.linear(xt, wt).Dispose(),
            };
            for (int i = 0; i < 3 + copies; i++) product(); // JIT, caches; every copy's kept panels packed
            long start = ThreadCpuClock.Nanoseconds(), now = start;
            long count = 0;
            while (now - start < seconds * 1e9)
            {
                for (int i = 0; i < 8; i++) product();
                count += 8;
                now = ThreadCpuClock.Nanoseconds();
            }
            return count * (double)rows * outF * inF / (now - start);
        }
    }
}
