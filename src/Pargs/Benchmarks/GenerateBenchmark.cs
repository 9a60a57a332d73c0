using System.Diagnostics;
using Pargs.Models;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>Settings of <see cref="GenerateBenchmark"/>.</summary>
public sealed record GenerateBenchmarkOptions
{
    public IReadOnlyList<int> Threads { get; init; } = new[] { 1, Math.Min(2, Environment.ProcessorCount) }.Distinct().ToArray();
    public IReadOnlyList<int> BatchSizes { get; init; } = new[] { 1, 10 };
    public int PromptLength { get; init; } = 16;
    /// <summary>Decode until this much time has passed (after warm-up) or the token cap is reached.</summary>
    public double SecondsPerConfig { get; init; } = 3.0;
    public int MaxNewTokens { get; init; } = 256;
    public int WarmupTokens { get; init; } = 3;
    public string Stories260KPath { get; init; } = BenchmarkModels.Stories260KPath;
    /// <summary>Which of "260k", "15m", "110m" to run.</summary>
    public IReadOnlyList<string> Models { get; init; } = new[] { "260k", "15m", "110m" };
    /// <summary>
    /// Decode paths to compare: "kernel" (Pargs' CPU decode kernel, what generate uses for Llama models),
    /// "torch-row" (torch ops, PyTorch's row-major weights) and "torch-column" (torch ops, <see cref="ColumnMajor"/>
    /// weights). Measured on the same model, switched in place, interleaved in rounds.
    /// </summary>
    public IReadOnlyList<string> Paths { get; init; } = new[] { "kernel", "torch-row", "torch-column" };
    /// <summary>Rounds per configuration: each round decodes SecondsPerConfig / Rounds with every layout in turn.</summary>
    public int Rounds { get; init; } = 3;
}

/// <summary>
/// Plain greedy decoding throughput, through the real decode path: one <see cref="BatchSession"/> prefill,
/// then per token LogitsFromHidden → argmax → Step (exactly what TextGenerator's greedy loop does per
/// step, minus the tokenizer bookkeeping, so models without a vocabulary can run it).
/// </summary>
public static class GenerateBenchmark
{
    public static BenchTable Run(GenerateBenchmarkOptions options, Action<string>? log = null)
    {
        BenchChecks.AtLeastOne(options.BatchSizes, "--batch");
        BenchChecks.Threads(options.Threads);
        BenchChecks.AtLeastOne([options.PromptLength], "--prompt-length");
        BenchChecks.KnownModels(options.Models, "260k", "15m", "110m", "phi3-260k", "phi3-15m", "neox-260k", "neox-15m",
            "gemma2-260k", "gemma2-15m", "gemma3-260k", "gemma3-15m");
        if (!(options.SecondsPerConfig > 0) || !double.IsFinite(options.SecondsPerConfig))
            throw new PargsException($"--seconds must be a positive number, got {options.SecondsPerConfig}");
        var table = new BenchTable("bench generate: greedy decoding throughput",
            "model", "params", "path", "threads", "batch", "prompt", "new", "prefill ms", "ms/step mean", "ms/step median", "matmul floor ms",
            "tok/s decode", "tok/s @median", "peak MiB");
        foreach (var path in options.Paths)
            if (path is not ("kernel" or "torch-row" or "torch-column")) throw new PargsException($"path \"{path}\": expected kernel, torch-row or torch-column");
        foreach (var name in options.Models)
        {
            using var model = Load(name, options.Stories260KPath);
            long parameters = model.parameters().Sum(p => p.numel());
            foreach (int threads in options.Threads)
                foreach (int batch in options.BatchSizes)
                {
                    ComputeThreads.Set(threads);
                    log?.Invoke($"generate: {name} threads={threads} batch={batch} paths={string.Join("/", options.Paths)}");
                    // Interleave the paths round by round so that all see the same background load.
                    var results = options.Paths.ToDictionary(l => l, _ => new List<Result>());
                    var floors = options.Paths.ToDictionary(l => l, _ => new List<double>());
                    for (int round = 0; round < Math.Max(1, options.Rounds); round++)
                        foreach (var layout in options.Paths)
                        {
                            ColumnMajor.Apply(model, layout == "torch-column");
                            using (layout == "kernel" ? null : CpuKernels.Suppress())
                                results[layout].Add(Measure(model, batch, options, options.SecondsPerConfig / Math.Max(1, options.Rounds)));
                            using (CpuKernels.Suppress())
                                floors[layout].Add(MatmulFloorMs(model, batch, repeats: 5));
                        }
                    foreach (var layout in options.Paths)
                    {
                        var r = Result.Combine(results[layout]);
                        table.Add(name, $"{parameters / 1e6:F2}M", layout, threads.ToString(), batch.ToString(), options.PromptLength.ToString(),
                            r.NewTokens.ToString(), $"{r.PrefillSeconds * 1000:F1}", $"{r.DecodeSeconds * 1000 / r.NewTokens:F2}", $"{r.MedianStepMs:F2}",
                            $"{Median(floors[layout]):F2}",
                            $"{batch * r.NewTokens / r.DecodeSeconds:F1}", $"{batch * 1000 / r.MedianStepMs:F1}",
                            $"{MachineInfo.PeakMemoryMiB():F0}");
                    }
                }
        }
        table.Notes.Add($"Prompt: {options.PromptLength} random token ids per row; greedy (argmax), no EOS stop. " +
                        "tok/s decode = batch × new tokens / wall time of the decode steps (prefill excluded); " +
                        "tok/s @median = batch / median step time, robust to preemption on a shared CPU; prefill ms is the median over rounds.");
        table.Notes.Add($"path: kernel = Pargs' CPU decode kernel (LlamaDecodeKernel + CpuLinear head, row-major weights; what generate uses); " +
                        "torch-row / torch-column = the same steps as torch ops with row-major (training) or ColumnMajor weights. " +
                        $"Each configuration decodes ~{options.SecondsPerConfig:F0} s per path, in {Math.Max(1, options.Rounds)} interleaved rounds " +
                        $"(fresh session, prefill, {options.WarmupTokens} warm-up steps each; at most {options.MaxNewTokens} tokens per round, never past the context).");
        table.Notes.Add("matmul floor = time per step of only the weight matrix-vector products (every 2-D weight but the " +
                        "embedding table, applied to [batch, in] inputs): what the step would cost with zero per-op overhead; " +
                        "ms/step − floor is the framework's overhead (small ops, masks, rotary, cache writes, dispatch).");
        table.Notes.Add("peak RSS = the process's VmHWM so far (monotonic over the run; models run small to large).");
        return table;
    }

    static CausalLM Load(string name, string storiesPath) => name.ToLowerInvariant() switch
    {
        "260k" => File.Exists(storiesPath) ? CausalLM.Load(storiesPath)
            : throw new PargsException($"{storiesPath}: stories260K checkpoint not found (run from the repository root or pass --stories)"),
        "15m" => BenchmarkModels.RandomLM(BenchmarkModels.Llama15MShape(), seed: 15),
        "110m" => BenchmarkModels.RandomLM(BenchmarkModels.Llama110MShape(), seed: 110),
        "phi3-260k" or "phi3-15m" => BenchmarkModels.RandomLM(BenchmarkModels.Phi3Shape(name.ToLowerInvariant() == "phi3-15m"), seed: 3),
        "neox-260k" or "neox-15m" => BenchmarkModels.RandomLM(BenchmarkModels.GptNeoXShape(name.ToLowerInvariant() == "neox-15m"), seed: 4),
        "gemma2-260k" or "gemma2-15m" or "gemma3-260k" or "gemma3-15m" =>
            BenchmarkModels.RandomLM(BenchmarkModels.GemmaShape(name.ToLowerInvariant().StartsWith("gemma3"), name.ToLowerInvariant().EndsWith("15m")), seed: 5),
        _ => throw new PargsException($"--models: unknown model \"{name}\" (expected 260k, 15m, 110m, phi3-260k, phi3-15m, neox-260k, neox-15m, gemma2-260k, gemma2-15m, gemma3-260k or gemma3-15m)"),
    };

    internal sealed record Result(int NewTokens, double PrefillSeconds, double DecodeSeconds, double MedianStepMs, IReadOnlyList<double> StepsMs)
    {
        public static Result Combine(IReadOnlyList<Result> rounds)
        {
            var steps = rounds.SelectMany(r => r.StepsMs).OrderBy(x => x).ToList();
            return new Result(rounds.Sum(r => r.NewTokens), Median(rounds.Select(r => r.PrefillSeconds).ToList()),
                rounds.Sum(r => r.DecodeSeconds), steps[steps.Count / 2], steps);
        }
    }

    static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.OrderBy(x => x).ToList();
        return sorted[sorted.Count / 2];
    }

    static Result Measure(CausalLM model, int batch, GenerateBenchmarkOptions options, double seconds)
    {
        var config = model.Config;
        int cap = Math.Min(options.MaxNewTokens, config.MaxPositions - options.PromptLength - options.WarmupTokens - 1);
        if (cap <= 0) throw new PargsException($"--prompt-length {options.PromptLength} leaves no room in the model's context ({config.MaxPositions})");
        var prompts = Enumerable.Range(0, batch).Select(b => BenchmarkModels.RandomPrompt(options.PromptLength, config.VocabSize, seed: b)).ToArray();
        using var _ = no_grad();
        using var session = new BatchSession(model.Backbone, batch, options.PromptLength + options.WarmupTokens + cap + 1);

        var clock = Stopwatch.StartNew();
        Tensor hidden;
        using (NewDisposeScope())
        {
            hidden = session.Prefill(prompts).MoveToOuterDisposeScope();
            hidden.data<float>(); // CPU ops are synchronous; reading the result makes that explicit
        }
        double prefill = clock.Elapsed.TotalSeconds;

        var steps = new List<double>();
        double decode;
        try
        {
            for (int i = 0; i < options.WarmupTokens; i++) hidden = Next(model, session, hidden);

            clock.Restart();
            while (steps.Count < cap && (steps.Count == 0 || clock.Elapsed.TotalSeconds < seconds))
            {
                double before = clock.Elapsed.TotalMilliseconds;
                hidden = Next(model, session, hidden);
                steps.Add(clock.Elapsed.TotalMilliseconds - before);
            }
            decode = clock.Elapsed.TotalSeconds;
        }
        finally { hidden.Dispose(); } // the last step's (or, when a step threw, the one before it: Next disposes its input only once it succeeded)
        steps.Sort();
        return new Result(steps.Count, prefill, decode, steps[steps.Count / 2], steps);
    }

    /// <summary>
    /// Milliseconds for one pass of every weight matrix (except the token embedding, which a step only
    /// indexes) over a [batch, in] input: the arithmetic a decode step cannot avoid.
    /// </summary>
    static double MatmulFloorMs(CausalLM model, int batch, int repeats = 20)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var weights = model.named_parameters()
            .Where(p => p.parameter.dim() == 2 && !p.name.Contains("embed_tokens") && !p.name.Contains("wte") && !p.name.Contains("wpe"))
            .Select(p => p.parameter).ToList();
        if (model.Config.TieWordEmbeddings) weights.Add(model.Backbone.TokenEmbeddingWeight);
        var inputs = weights.Select(w => randn(batch, w.shape[1])).ToList();
        void Pass() { for (int i = 0; i < weights.Count; i++) nn.functional.linear(inputs[i], weights[i]).Dispose(); }
        Pass();
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < repeats; r++) Pass();
        return clock.Elapsed.TotalMilliseconds / repeats;
    }

    /// <summary>One greedy step: logits of the last hidden state, argmax, append. Reading the token ids back is part of the cost.</summary>
    static Tensor Next(CausalLM model, BatchSession session, Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var next = model.LogitsFromHidden(hidden).argmax(-1);
        var ids = next.data<long>().ToArray(); // what a real decoder needs on the host (stop checks, text)
        var result = session.Step(tensor(ids)).MoveToOuterDisposeScope();
        hidden.Dispose();
        return result;
    }
}
