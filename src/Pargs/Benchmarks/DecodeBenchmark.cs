using System.Diagnostics;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>Settings of <see cref="DecodeBenchmark"/>.</summary>
public sealed record DecodeBenchmarkOptions
{
    public int Threads { get; init; } = 1;
    public IReadOnlyList<int> PromptLengths { get; init; } = new[] { 64, 256 };
    public int NewTokens { get; init; } = 64;
    /// <summary>The naive reference is O(k·L²) per token, so it runs fewer tokens; per-token time is reported.</summary>
    public int NaiveNewTokens { get; init; } = 4;
    public int K { get; init; } = 10;
    /// <summary>
    /// Rounds per model and prompt: each round runs top-k, ARGS and PARGS once, in turn, so that the three see
    /// the same machine state; times are medians over rounds and PARGS / top-k is the median of the rounds' own
    /// ratios (the naive reference runs once). WHY 11: on this shared 2-core VM single rounds of the same work
    /// differed by up to 30 % (docs/benchmarks.md); a round's ratio is steadier than either of its times.
    /// </summary>
    public int Repeats { get; init; } = 11;
    public string Stories260KPath { get; init; } = BenchmarkModels.Stories260KPath;
    /// <summary>Which of "260k", "15m" to run.</summary>
    public IReadOnlyList<string> Models { get; init; } = new[] { "260k", "15m" };
}

/// <summary>
/// Wall time per generated token of top-k, ARGS, PARGS (fast tokenwise path) and the naive PARGS reference,
/// with a random reward model the same shape as the LM, one prompt of random token ids (batch 1).
/// </summary>
public static class DecodeBenchmark
{
    public static BenchTable Run(DecodeBenchmarkOptions options, Action<string>? log = null)
    {
        BenchChecks.AtLeastOne(options.PromptLengths, "--prompt-lengths");
        BenchChecks.AtLeastOne([options.NewTokens], "--new-tokens");
        BenchChecks.AtLeastOne([options.NaiveNewTokens], "--naive-new-tokens");
        BenchChecks.AtLeastOne([options.K], "-k");
        BenchChecks.KnownModels(options.Models, "260k", "15m");
        BenchChecks.Threads([options.Threads]);
        Models.Cpu.ComputeThreads.Set(options.Threads);
        var table = new BenchTable($"bench decode: wall ms per generated token (k = {options.K}, batch 1, threads {options.Threads})",
            "model", "prompt", "top-k", "ARGS", "PARGS", "naive PARGS", "PARGS / top-k (target ≤ 2.0)", "naive / PARGS (target ≥ 25 at 256)",
            "PARGS / top-k work: multiply-adds", "weight bytes");
        foreach (var name in options.Models)
        {
            var (lm, config) = Load(name, options.Stories260KPath);
            using var _lm = lm;
            using var rm = Rewards.RewardModel.Create(config, seed: 7);
            rm.Tokenizer = lm.Tokenizer;
            rm.eval();
            if (options.K > config.VocabSize) throw new PargsException($"-k {options.K} is larger than {name}'s vocabulary ({config.VocabSize} tokens)");
            foreach (int promptLength in options.PromptLengths)
            {
                if (promptLength + options.NewTokens + options.K + 1 > config.MaxPositions)
                    throw new PargsException($"prompt {promptLength} + {options.NewTokens} new tokens exceeds {name}'s context ({config.MaxPositions})");
                var prompt = BenchmarkModels.RandomPrompt(promptLength, config.VocabSize, seed: promptLength);
                double Run(DecodingMethod method, bool naive) => MsPerToken(lm, rm, prompt, method, naive, naive ? options.NaiveNewTokens : options.NewTokens, options.K);
                var fast = new[] { DecodingMethods.TopK, DecodingMethods.Args, DecodingMethods.Pargs };
                log?.Invoke($"decode: {name} prompt={promptLength} warm-up");
                foreach (var method in fast) Run(method, false); // first-call allocations and JIT
                var times = fast.ToDictionary(m => m, _ => new List<double>());
                for (int round = 0; round < Math.Max(1, options.Repeats); round++)
                {
                    log?.Invoke($"decode: {name} prompt={promptLength} round {round + 1}/{options.Repeats}");
                    foreach (var method in fast) times[method].Add(Run(method, false));
                }
                double Median(IEnumerable<double> xs) => xs.Order().ElementAt(xs.Count() / 2);
                double topk = Median(times[DecodingMethods.TopK]), args = Median(times[DecodingMethods.Args]), pargs = Median(times[DecodingMethods.Pargs]);
                double pairedRatio = Median(times[DecodingMethods.Pargs].Zip(times[DecodingMethods.TopK], (p, t) => p / t));
                log?.Invoke($"decode: {name} prompt={promptLength} naive PARGS");
                double naivePargs = Run(DecodingMethods.Pargs, true);
                var topKWork = DecodeWork.TopK(config, promptLength, options.NewTokens);
                var guidedWork = DecodeWork.Guided(config, promptLength, options.NewTokens, options.K);
                table.Add(name, promptLength.ToString(), $"{topk:F2}", $"{args:F2}", $"{pargs:F2}", $"{naivePargs:F1}",
                    $"{pairedRatio:F2}", $"{naivePargs / pargs:F1}",
                    $"{guidedWork.MultiplyAdds / topKWork.MultiplyAdds:F1}", $"{guidedWork.WeightBytes / topKWork.WeightBytes:F2}");
            }
        }
        table.Notes.Add($"Prompt = random token ids; the reward model is a random backbone of the LM's shape + a linear score head (RewardModel.Create).");
        table.Notes.Add($"top-k/ARGS/PARGS: {options.NewTokens} new tokens through TokenwiseDecoder.Run; naive PARGS: only {options.NaiveNewTokens} new tokens " +
                        "through the same loop on the cache-free reference engine (DecodingEngine.Naive) — its per-token cost grows with the sequence, so this slightly flatters it.");
        table.Notes.Add("15m = random Llama of stories15M's shape with max_position_embeddings raised from 256 to 512 so that prompt 256 + 64 new tokens fit.");
        table.Notes.Add("work = multiply-adds and float32 weight bytes read per generated token, counted from the shape (DecodeWork): " +
                        "a time ratio tends to the bytes ratio where reading weights dominates a step and to the multiply-add ratio where the weights stay in cache.");
        table.Notes.Add($"ms/token = wall time of the whole Run (prefill included) / new tokens; fast methods: median of {options.Repeats} interleaved rounds (top-k, ARGS, PARGS in turn), naive: one run. " +
                        "PARGS / top-k = median over rounds of that round's PARGS time / its top-k time.");
        return table;
    }

    static (CausalLM Lm, ModelConfig Config) Load(string name, string storiesPath)
    {
        var lm = name.ToLowerInvariant() switch
        {
            "260k" => File.Exists(storiesPath) ? CausalLM.Load(storiesPath)
                : throw new PargsException($"{storiesPath}: stories260K checkpoint not found (run from the repository root or pass --stories)"),
            // stories15M's context is 256; a 256-token prompt + new tokens needs more. Only the rotary table
            // grows: the weights, and so the per-token cost at a given length, are unchanged.
            "15m" => BenchmarkModels.RandomLM(BenchmarkModels.Llama15MShape() with { MaxPositions = 512 }, seed: 15),
            _ => throw new PargsException($"--models: unknown model \"{name}\" (expected 260k or 15m)"),
        };
        return (lm, lm.Config);
    }

    static double MsPerToken(CausalLM lm, Rewards.RewardModel rm, int[] prompt, DecodingMethod method, bool naive, int newTokens, int k)
    {
        var options = new DecodingOptions
        {
            Method = method.Options(new MethodSettings { K = k, W = 1.0 }), MaxNewTokens = newTokens, StopAtEos = false, BatchSize = 1, Seed = 1,
            Engine = naive ? DecodingEngine.Naive : DecodingEngine.Cached,
        };
        var tokenizer = lm.Tokenizer ?? new IdTokenizer(lm.Config.VocabSize);
        var context = new DecodingContext(tokenizer, null, false, Array.Empty<string>(), newTokens);
        var rows = new[] { new RowProgress(context, 0, 0, prompt) };
        var clock = Stopwatch.StartNew();
        new TokenwiseDecoder(lm, rm, options).Run(new[] { prompt }, rows);
        double seconds = clock.Elapsed.TotalSeconds;
        if (rows[0].Tokens.Count != newTokens)
            throw new InvalidOperationException($"expected {newTokens} tokens, got {rows[0].Tokens.Count}");
        return seconds * 1000 / newTokens;
    }
}
