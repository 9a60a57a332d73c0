using System.Diagnostics;
using Pargs.Decoding;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Models.Cpu;

namespace Pargs.Benchmarks;

/// <summary>Settings of <see cref="HostEngineBenchmark"/>.</summary>
public sealed record HostEngineBenchmarkOptions
{
    public required string Gguf { get; init; }
    public int Threads { get; init; } = 1;
    public int PromptLength { get; init; } = 16;
    public int NewTokens { get; init; } = 64;
    /// <summary>Rounds of (torch engine, host engine) runs, alternated (the order flips every round).</summary>
    public int Rounds { get; init; } = 3;
}

/// <summary>
/// <c>pargs bench host --gguf FILE</c>: the host engine (<see cref="HostSession"/>, no torch) against the torch engine
/// (<see cref="LocalEngine"/> on <see cref="CausalLM.LoadForInference"/>) on the same mapped file, through the engine API
/// as the decoding loop drives it — greedy at batch 1: each step a <see cref="NextTokens.TopKRows"/>(1) of the last answer,
/// then <see cref="ILanguageModelSession.Append"/> (forward, head, log-softmax). Runs alternate (torch, host, host, torch…)
/// in one process; CPU time per token (process user + sys, and the calling thread's) is what holds on a shared machine.
/// Also checks that both engines chose the same tokens.
/// </summary>
public static class HostEngineBenchmark
{
    public static BenchTable Run(HostEngineBenchmarkOptions o, Action<string>? log = null)
    {
        if (o.NewTokens < 1 || o.PromptLength < 1 || o.Rounds < 1) throw new PargsException("--new-tokens, --prompt-length and --rounds must be positive");
        BenchChecks.Threads([o.Threads]);
        ComputeThreads.Set(o.Threads);
        using var host = HostLanguageModel.TryLoad(o.Gguf)
            ?? throw new PargsException($"{o.Gguf}: not a file the host engine decodes (a GGUF of llama, mistral, qwen2 or qwen3 without a sliding window or LongRoPE)");
        using var torchLm = CausalLM.LoadForInference(o.Gguf);
        var engines = new (string Name, LanguageModelEngine Engine)[] { ("torch", LanguageModelEngine.Cached(torchLm)), ("host", LanguageModelEngine.Host(host)) };
        var prompt = Enumerable.Range(0, o.PromptLength).Select(i => 3 + (int)((long)i * 7919 % (Math.Min(host.Config.VocabSize, 256) - 3))).ToArray();
        var table = new BenchTable($"bench host --gguf {Path.GetFileName(o.Gguf)}: greedy decode through the engine API, batch 1, {o.Threads} thread(s)",
            "engine", "round", "decode tok/s", "process CPU ms/token", "thread CPU ms/token");
        var tokens = new Dictionary<string, long[]>();
        var cpu = engines.ToDictionary(e => e.Name, _ => new List<double>());
        for (int round = 0; round < o.Rounds; round++)
        {
            var order = round % 2 == 0 ? engines : engines.Reverse().ToArray();
            foreach (var (name, engine) in order)
            {
                log?.Invoke($"bench host: {name}, round {round + 1}");
                var chosen = new long[o.NewTokens];
                using var session = engine.OpenSession(o.PromptLength + o.NewTokens + 1);
                var next = session.AddRows([prompt]);
                var process = Process.GetCurrentProcess();
                var processCpu = process.TotalProcessorTime;
                long threadCpu = ThreadCpuClock.Nanoseconds();
                var watch = Stopwatch.StartNew();
                for (int i = 0; i < o.NewTokens; i++)
                {
                    chosen[i] = next.TopKRows(1).Ids[0];
                    next = session.Append([chosen[i]]);
                }
                double seconds = watch.Elapsed.TotalSeconds;
                double threadMs = (ThreadCpuClock.Nanoseconds() - threadCpu) / 1e6 / o.NewTokens;
                process.Refresh();
                double processMs = (process.TotalProcessorTime - processCpu).TotalMilliseconds / o.NewTokens;
                cpu[name].Add(processMs);
                table.Add(name, (round + 1).ToString(), $"{o.NewTokens / seconds:F1}", $"{processMs:F2}", $"{threadMs:F2}");
                tokens[name] = chosen;
            }
        }
        double Median(List<double> x) => x.Order().ElementAt(x.Count / 2);
        table.Notes.Add($"median process CPU ms/token: torch {Median(cpu["torch"]):F2}, host {Median(cpu["host"]):F2} (host ÷ torch {Median(cpu["host"]) / Median(cpu["torch"]):F3}).");
        table.Notes.Add($"same greedy tokens on both engines: {(tokens["torch"].SequenceEqual(tokens["host"]) ? "yes" : "NO")}; {o.NewTokens} tokens after a {o.PromptLength}-token prompt (prefill excluded); token ids as bench generate --gguf's.");
        return table;
    }
}
