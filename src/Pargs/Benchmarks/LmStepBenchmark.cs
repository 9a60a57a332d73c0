using Pargs.Decoding;
using Pargs.Models;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>
/// A batched LM step of the 15M shape as <c>pargs serve</c> runs it at 12–16 streams (the "LmStep" phase), split into its
/// parts: the decode kernel's six layers over one token per row, the LM head (32,000 × 288, tied to the embedding), and the
/// log-softmax over [rows, 32,000]. The model is marked inference-only as a server's (<see cref="KeptPanels"/>). The modes
/// (the LM head's products before and after) are alternated in blocks so both see the same load.
/// </summary>
public static class LmStepBenchmark
{
    /// <summary>A way of running the head, switched on for its blocks (and off after).</summary>
    public sealed record Mode(string Name, Action On, Action Off);

    /// <summary>
    /// The modes alternated: the LM head on the dot-product blocks (the default) and over its kept panels
    /// (<see cref="KeptPanels.KeepsHead"/> with a 64 MiB budget, PARGS_KEPT_HEAD_MIB=64).
    /// </summary>
    public static IReadOnlyList<Mode> Modes()
    {
        long saved = KeptPanels.MaxHeadBytes;
        const long on = 64L << 20; // the 15M shape's head: 35.2 MiB
        return [new("head: dot blocks", () => KeptPanels.MaxHeadBytes = 0, () => KeptPanels.MaxHeadBytes = saved),
                new("head: kept panels", () => KeptPanels.MaxHeadBytes = on, () => KeptPanels.MaxHeadBytes = saved)];
    }

    public static BenchTable Run(IReadOnlyList<int> rowCounts, IReadOnlyList<int> threadCounts, double secondsPerCell, IReadOnlyList<Mode> modes, Action<string>? log = null)
    {
        var table = new BenchTable("bench gemm: the 15M shape's batched LM step (one token per row over a 48-token prefix), by part",
            "rows", "threads", "mode", "layers ms (wall)", "head ms (wall)", "log-softmax ms (wall)", "step ms (wall)", "head GMAC/s (wall)", "layers ms (CPU)", "head ms (CPU)", "log-softmax ms (CPU)", "step ms (CPU, process)");
        var config = BenchmarkModels.Llama15MShape();
        using var lm = BenchmarkModels.RandomLM(config, seed: 15);
        KeptPanels.MarkInferenceOnly(lm.Backbone); // a server's LM: held for inference only
        int savedThreads = CpuThreads.Count;
        using var noGrad = no_grad();
        var process = System.Diagnostics.Process.GetCurrentProcess();
        try
        {
            foreach (int rows in rowCounts.Where(r => r > 0))
            {
                using var session = new BatchSession(lm.Backbone, rows);
                using (var scope = NewDisposeScope())
                    session.Prefill(Enumerable.Range(0, rows).Select(r => BenchmarkModels.RandomPrompt(48, config.VocabSize, 100 + r)).ToArray());
                using var tokens = tensor(Enumerable.Range(0, rows).Select(i => (long)(3 + i * 7919 % (config.VocabSize - 3))).ToArray(), rows, 1);
                foreach (int threads in threadCounts.Where(t => t > 0))
                {
                    log?.Invoke($"gemm: LM step, {rows} rows, {threads} thread(s)");
                    ComputeThreads.Set(threads);
                    // [mode][part]: wall and thread CPU sums (ns), and the process's CPU per step
                    var wall = new double[modes.Count, 3];
                    var cpu = new double[modes.Count, 3];
                    var processCpu = new double[modes.Count];
                    var steps = new long[modes.Count];
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    while (clock.Elapsed.TotalSeconds < secondsPerCell * modes.Count)
                        for (int m = 0; m < modes.Count; m++)
                        {
                            modes[m].On();
                            try
                            {
                                Step(); // warm after the switch
                                process.Refresh();
                                var processStart = process.TotalProcessorTime;
                                for (int i = 0; i < 10; i++) Step(m);
                                process.Refresh();
                                processCpu[m] += (process.TotalProcessorTime - processStart).TotalNanoseconds;
                            }
                            finally { modes[m].Off(); }
                        }
                    for (int m = 0; m < modes.Count; m++)
                    {
                        double n = steps[m] * 1e6; // ns → ms per step
                        double headMacs = (double)rows * config.VocabSize * config.HiddenSize;
                        table.Add(rows.ToString(), threads.ToString(), modes[m].Name,
                            $"{wall[m, 0] / n:F3}", $"{wall[m, 1] / n:F3}", $"{wall[m, 2] / n:F3}", $"{(wall[m, 0] + wall[m, 1] + wall[m, 2]) / n:F3}",
                            $"{headMacs / (wall[m, 1] / steps[m]):F1}",
                            $"{cpu[m, 0] / n:F3}", $"{cpu[m, 1] / n:F3}", $"{cpu[m, 2] / n:F3}", $"{processCpu[m] / n:F3}");
                    }

                    void Step(int mode = -1)
                    {
                        using var scope = NewDisposeScope();
                        long w0 = System.Diagnostics.Stopwatch.GetTimestamp(), c0 = ThreadCpuClock.Nanoseconds();
                        var hidden = session.Siblings(tokens); // [rows, 1, hidden]: the step's forward, nothing committed
                        long w1 = System.Diagnostics.Stopwatch.GetTimestamp(), c1 = ThreadCpuClock.Nanoseconds();
                        var logits = lm.LogitsFromHidden(hidden.select(1, 0));
                        long w2 = System.Diagnostics.Stopwatch.GetTimestamp(), c2 = ThreadCpuClock.Nanoseconds();
                        var logProbs = DecodingSteps.LogSoftmax(logits);
                        long w3 = System.Diagnostics.Stopwatch.GetTimestamp(), c3 = ThreadCpuClock.Nanoseconds();
                        if (mode < 0) return;
                        double tick = 1e9 / System.Diagnostics.Stopwatch.Frequency;
                        wall[mode, 0] += (w1 - w0) * tick; wall[mode, 1] += (w2 - w1) * tick; wall[mode, 2] += (w3 - w2) * tick;
                        cpu[mode, 0] += c1 - c0; cpu[mode, 1] += c2 - c1; cpu[mode, 2] += c3 - c2;
                        steps[mode]++;
                    }
                }
            }
        }
        finally
        {
            ComputeThreads.Set(savedThreads);
            KeptPanels.Release(lm.Backbone); // its packed panels go with the model, not when the GC next finds the backbone
        }
        table.Notes.Add($"Random weights of the 15M shape (hidden {config.HiddenSize}, {config.NumLayers} layers, ff {config.IntermediateSize}, vocabulary {config.VocabSize}, tied head), marked inference-only (kept CpuGemm panels) as pargs serve marks its models; each row's step is one token over a 48-token prefix (BatchSession.Siblings with k = 1: a step's forward without its cache commit).");
        table.Notes.Add($"Modes alternated in blocks of 10 steps for {secondsPerCell * modes.Count:F1} s per cell; ms per step. CPU: the calling thread's (at 2 threads the other thread's share and the caller's spin-wait are not split out); process CPU: every thread's.");
        return table;
    }
}
