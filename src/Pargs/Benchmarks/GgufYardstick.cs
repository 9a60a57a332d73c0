using System.Diagnostics;
using System.Text.Json.Nodes;
using Pargs.Models;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>Settings of <see cref="GgufYardstick"/>.</summary>
public sealed record GgufYardstickOptions
{
    public required string Gguf { get; init; }
    public IReadOnlyList<int> Threads { get; init; } = [1, 2];
    public int PromptLength { get; init; } = 16;
    public int NewTokens { get; init; } = 64;
    public int PrefillTokens { get; init; } = 512;
    public int Repeats { get; init; } = 3;
    /// <summary>Also run llama.cpp (docs/yardstick/llamacpp-decode.mjs) between two Pargs runs and report the ratios.</summary>
    public bool Yardstick { get; init; }
    /// <summary>Pargs' KV cache (bench generate --kv-cache); llama.cpp's side keeps its default, float16.</summary>
    public KvCacheType KvCache { get; init; } = KvCacheType.F32;
    /// <summary>The repository root (for docs/yardstick and tools/llamacpp-reference's node_modules).</summary>
    public string RepositoryRoot { get; init; } = ".";
}

/// <summary>
/// <c>pargs bench generate --gguf FILE [--yardstick]</c>: Pargs on a GGUF in its stored precision
/// (<see cref="CausalLM.LoadForInference"/>), measured the way docs/yardstick/llamacpp-decode.mjs measures
/// llama.cpp on the same file — greedy decoding at batch 1 after a 16-token prompt (decode tok/s, prefill
/// excluded, best of the repeats) and the prefill of a 512-token prompt, the same token ids, at each thread
/// count. With the yardstick, Pargs runs right before and after llama.cpp in one process run, so the ratio
/// sees the same machine load; Pargs' figure is the mean of its two runs.
/// </summary>
public static class GgufYardstick
{
    /// <summary>A run's rates; <paramref name="DecodeCpuMs"/> is the process's CPU time per decoded token (Pargs only, NaN for llama.cpp).</summary>
    public sealed record Speed(int Threads, double DecodeTokS, double PrefillTokS, double DecodeCpuMs = double.NaN);

    public static BenchTable Run(GgufYardstickOptions o, Action<string>? log = null)
    {
        BenchChecks.Threads(o.Threads);
        if (o.NewTokens < 1 || o.PromptLength < 1 || o.PrefillTokens < 1 || o.Repeats < 1)
            throw new PargsException("--new-tokens, --prompt-length, --prefill and --repeats must be positive");
        var table = new BenchTable($"bench generate --gguf {Path.GetFileName(o.Gguf)}: greedy decode (batch 1) and {o.PrefillTokens}-token prefill{(o.KvCache == KvCacheType.F16 ? ", Pargs' KV cache f16" : "")}",
            "engine", "threads", "decode tok/s", "prefill tok/s", "decode ratio", "prefill ratio");
        var watch = Stopwatch.StartNew();
        using var lm = CausalLM.LoadForInference(o.Gguf);
        lm.Backbone.KvCacheType = o.KvCache;
        double loadSeconds = watch.Elapsed.TotalSeconds;
        var before = MeasurePargs(lm, o, log);
        List<Speed> after = [];
        if (!o.Yardstick)
        {
            foreach (var s in before) table.Add("pargs", s.Threads.ToString(), $"{s.DecodeTokS:F1}", $"{s.PrefillTokS:F1}", "", "");
        }
        else
        {
            var llama = MeasureLlamaCpp(o, log);
            after = MeasurePargs(lm, o, log);
            foreach (int threads in o.Threads)
            {
                var b = before.First(s => s.Threads == threads);
                var a = after.First(s => s.Threads == threads);
                var l = llama.First(s => s.Threads == threads);
                double decode = (a.DecodeTokS + b.DecodeTokS) / 2, prefill = (a.PrefillTokS + b.PrefillTokS) / 2;
                table.Add("llama.cpp", threads.ToString(), $"{l.DecodeTokS:F1}", $"{l.PrefillTokS:F1}", "", "");
                table.Add("pargs", threads.ToString(), $"{decode:F1} ({b.DecodeTokS:F1} / {a.DecodeTokS:F1})", $"{prefill:F1} ({b.PrefillTokS:F1} / {a.PrefillTokS:F1})",
                          $"{decode / l.DecodeTokS:F2}×", $"{prefill / l.PrefillTokS:F2}×");
            }
            table.Notes.Add("pargs = mean of the runs before / after llama.cpp (shown in brackets); ratio = pargs / llama.cpp. llama.cpp runs with its defaults (float16 KV cache), Pargs with its float32 KV cache.");
        }
        // WHY: on a shared machine tok/s counts the time the host did not run us; CPU time per token does not (memory
        // stalls count as CPU time, so it still measures bandwidth), and it shows the spinning of idle worker threads.
        table.Notes.Add("Pargs decode, process CPU ms per token (user + sys, lowest run" + (after.Count > 0 ? "; the runs before llama.cpp, then after" : "") + "): "
                        + string.Join("; ", before.Concat(after).Select(s => $"{s.Threads} thread(s) {s.DecodeCpuMs:F1}")) + ".");
        var formats = lm.StoredWeights?.BytesByFormat().OrderByDescending(p => p.Value).Select(p => $"{Weights.WeightFormats.Name(p.Key)} {p.Value / 1048576.0:F0} MiB");
        table.Notes.Add($"Pargs: {(formats is null ? "float32 (no stored-precision path for this file)" : "stored precision, mapped: " + string.Join(", ", formats))}; loaded in {loadSeconds:F2} s; peak RSS {MachineInfo.PeakMemoryMiB():F0} MiB.");
        table.Notes.Add($"decode: {o.NewTokens} greedy tokens after a {o.PromptLength}-token prompt (prefill excluded), best of {o.Repeats}; prefill: one {o.PrefillTokens}-token forward, best of {o.Repeats}. Token ids 3 + 7919·i mod (min(vocab, 256) − 3), as the yardstick script.");
        return table;
    }

    /// <summary>The yardstick script's token ids: real tokens of every vocabulary here, never special ones.</summary>
    static int[] Ids(int count, int vocab) => Enumerable.Range(0, count).Select(i => 3 + (int)((long)i * 7919 % (Math.Min(vocab, 256) - 3))).ToArray();

    static List<Speed> MeasurePargs(CausalLM lm, GgufYardstickOptions o, Action<string>? log)
    {
        var speeds = new List<Speed>();
        int vocab = lm.Config.VocabSize;
        using var _ = no_grad();
        foreach (int threads in o.Threads)
        {
            ComputeThreads.Set(threads);
            log?.Invoke($"pargs: {Path.GetFileName(o.Gguf)} threads={threads}");
            double bestDecode = 0, bestPrefill = 0, leastCpuMs = double.PositiveInfinity;
            for (int repeat = 0; repeat < o.Repeats; repeat++)
            {
                using (var scope = NewDisposeScope())
                using (var session = new BatchSession(lm.Backbone, 1, o.PromptLength + o.NewTokens + 1))
                {
                    var logits = lm.LogitsFromHidden(session.Prefill([Ids(o.PromptLength, vocab)]));
                    var next = logits.argmax(-1);
                    var process = Process.GetCurrentProcess();
                    var cpu = process.TotalProcessorTime;
                    var watch = Stopwatch.StartNew();
                    for (int i = 0; i < o.NewTokens; i++)
                    {
                        using var step = NewDisposeScope();
                        next = lm.LogitsFromHidden(session.Step(next)).argmax(-1).MoveToOuterDisposeScope();
                    }
                    bestDecode = Math.Max(bestDecode, o.NewTokens / watch.Elapsed.TotalSeconds);
                    process.Refresh();
                    leastCpuMs = Math.Min(leastCpuMs, (process.TotalProcessorTime - cpu).TotalMilliseconds / o.NewTokens);
                }
                using (var scope = NewDisposeScope())
                using (var session = new BatchSession(lm.Backbone, 1, o.PrefillTokens))
                {
                    var watch = Stopwatch.StartNew();
                    lm.LogitsFromHidden(session.Prefill([Ids(o.PrefillTokens, vocab)]));
                    bestPrefill = Math.Max(bestPrefill, o.PrefillTokens / watch.Elapsed.TotalSeconds);
                }
            }
            speeds.Add(new Speed(threads, bestDecode, bestPrefill, leastCpuMs));
        }
        return speeds;
    }

    static List<Speed> MeasureLlamaCpp(GgufYardstickOptions o, Action<string>? log)
    {
        string script = Path.Combine(o.RepositoryRoot, "docs", "yardstick", "llamacpp-decode.mjs");
        string modules = Path.Combine(o.RepositoryRoot, "tools", "llamacpp-reference", "node_modules", "node-llama-cpp");
        if (!File.Exists(script)) throw new PargsException($"{script}: the yardstick script is missing (run from the repository root)");
        if (!Directory.Exists(modules)) throw new PargsException($"{modules}: node-llama-cpp is not installed (npm ci in tools/llamacpp-reference)");
        log?.Invoke($"llama.cpp: {Path.GetFileName(o.Gguf)} threads={string.Join(",", o.Threads)}");
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { script, "--model", Path.GetFullPath(o.Gguf), "--threads", string.Join(",", o.Threads), "--new-tokens", o.NewTokens.ToString(),
                                  "--prompt", o.PromptLength.ToString(), "--prefill", o.PrefillTokens.ToString(), "--repeats", o.Repeats.ToString() })
            start.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(start) ?? throw new PargsException("node: could not start"); }
        catch (System.ComponentModel.Win32Exception e) { throw new PargsException($"node: cannot run it ({e.Message}); the yardstick needs Node 20"); }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0) throw new PargsException($"the llama.cpp yardstick failed (exit {process.ExitCode}): {stderr.Result.Trim().Split('\n').LastOrDefault()}");
            var speeds = new List<Speed>();
            foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!line.StartsWith('{')) continue;
                var json = JsonNode.Parse(line)!.AsObject();
                speeds.Add(new Speed(json["threads"]!.GetValue<int>(), json["decode_tok_s"]!.GetValue<double>(), json["prefill_tok_s"]!.GetValue<double>()));
            }
            foreach (int t in o.Threads)
                if (speeds.All(s => s.Threads != t)) throw new PargsException($"the llama.cpp yardstick printed no result for {t} thread(s)");
            return speeds;
        }
    }
}
