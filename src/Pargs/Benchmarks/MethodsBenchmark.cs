using System.Diagnostics;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Benchmarks;

/// <summary>
/// `pargs bench decode --methods …`: the other methods of the field next to top-k in one run — wall ms per generated
/// token, its ratio to top-k, and language-model / reward-model calls per token, counted by the methods themselves
/// (an LM call = one forward of one row: a prefill or a step; an RM call = one reward-model forward of one row —
/// for FaRMA/GenARM one token of the vocabulary head, for CD/CARDS one sequence scored; PARGS's k siblings count as k).
/// </summary>
public static class MethodsBenchmark
{
    /// <summary>Rounds when none are asked for: each round runs top-k and every method once, in turn.</summary>
    public const int DefaultRounds = 5;

    public static BenchTable Run(DecodeBenchmarkOptions options, IReadOnlyList<string> methodNames, int rounds = DefaultRounds, Action<string>? log = null)
    {
        if (rounds < 1) throw new PargsException($"--rounds must be at least 1, got {rounds}");
        BenchChecks.AtLeastOne(options.PromptLengths, "--prompt-lengths");
        BenchChecks.KnownModels(options.Models, "260k", "15m");
        BenchChecks.Threads([options.Threads]);
        Models.Cpu.ComputeThreads.Set(options.Threads);
        var methods = methodNames.Select(DecodingMethods.Parse).Where(m => m != DecodingMethods.TopK).Distinct().ToList();
        if (methods.Count == 0) throw new PargsException("--methods: name at least one method besides topk");
        int promptLength = options.PromptLengths[0];
        var table = new BenchTable($"bench decode --methods: wall ms per generated token next to top-k (k = {options.K}, batch 1, prompt {promptLength}, threads {options.Threads})",
            "model", "method", "ms/token", "÷ top-k", "÷ top-k, min–max of rounds", "LM calls/token", "RM calls/token", "settings");
        foreach (var name in options.Models)
        {
            using var lm = name == "260k" ? CausalLM.Load(options.Stories260KPath) : BenchmarkModels.RandomLM(BenchmarkModels.Llama15MShape() with { MaxPositions = 512 }, seed: 15);
            var config = lm.Config;
            using var scalar = RewardModel.Create(config, seed: 7);
            scalar.Tokenizer = lm.Tokenizer;
            scalar.eval();
            using var head = BenchmarkModels.RandomLM(config, seed: 8); // the vocabulary reward models below wrap it (not disposed: they would dispose it)
            head.Tokenizer = lm.Tokenizer;
            var prompt = BenchmarkModels.RandomPrompt(promptLength, config.VocabSize, seed: promptLength);
            if (promptLength + options.NewTokens + 1 > config.MaxPositions)
                throw new PargsException($"prompt {promptLength} + {options.NewTokens} new tokens exceeds {name}'s context ({config.MaxPositions})");
            double promptReward = SequenceRewardBatches.Score(scalar, [prompt])[0];

            (IMethodOptions Options, IRewardModel? Rm, string Settings) Setup(DecodingMethod m)
            {
                var s = new MethodSettings { K = m.Reads(MethodParameter.K) ? options.K : null, W = m.Reads(MethodParameter.W) ? 1.0 : null };
                if (m == DecodingMethods.Cards)
                    return (new CardsOptions { TargetReward = promptReward, K = CardsOptions.DefaultTopK }, scalar, $"r* = r(prompt) = {promptReward:F2}, top-k 40");
                IRewardModel? rm = m.RewardUse == RewardUse.Vocabulary ? new VocabularyRewardModel(head, m.GuideObjective!.Value) : m.NeedsRewardModel ? scalar : null;
                var o = m.Options(s);
                string settings = o switch
                {
                    ControlledDecodingOptions cd => $"K = {cd.Continuations}, M = {cd.BlockLength}",
                    GenArmOptions g => $"α = {g.Alpha}, whole vocabulary",
                    _ => $"k = {o.RecordK}" + (o.RecordW is { } w ? $", w = {w}" : ""),
                };
                return (o, rm, settings);
            }
            var setups = new[] { DecodingMethods.TopK }.Concat(methods).Select(m => (Label: m.Name, Method: m, Setup: Setup(m))).ToList();
            // A vocabulary-head reward model of the LM's shape costs a whole LM step per token, so FaRMA/GenARM cannot go
            // below ≈ 2× top-k with it; the same methods with a reward model 4.5× narrower and 3× shallower (same
            // vocabulary) show what a smaller guide costs.
            using var smallHead = name == "15m" ? BenchmarkModels.RandomLM(SmallRewardShape(config), seed: 9) : null;
            if (smallHead is not null)
                foreach (var m in methods.Where(m => m.RewardUse == RewardUse.Vocabulary).ToList())
                {
                    var (o, _, settings) = Setup(m);
                    setups.Add(($"{m.Name} (small RM)", m, (o, new VocabularyRewardModel(smallHead, m.GuideObjective!.Value), $"{settings}; RM dim {smallHead.Config.HiddenSize}, {smallHead.Config.NumLayers} layers")));
                }
            log?.Invoke($"decode --methods: {name} warm-up");
            foreach (var (_, _, s) in setups) Measure(lm, s.Rm, s.Options, prompt, options.NewTokens);
            var samples = setups.Select(_ => new List<Measurement>()).ToList();
            for (int round = 0; round < rounds; round++)
            {
                log?.Invoke($"decode --methods: {name} round {round + 1}/{rounds}");
                for (int i = 0; i < setups.Count; i++) samples[i].Add(Measure(lm, setups[i].Setup.Rm, setups[i].Setup.Options, prompt, options.NewTokens));
            }
            double Median(IEnumerable<double> xs) => xs.Order().ElementAt(xs.Count() / 2);
            for (int i = 0; i < setups.Count; i++)
            {
                var list = samples[i];
                var ratios = list.Zip(samples[0], (a, b) => a.MsPerToken / b.MsPerToken).ToList();
                var last = list[^1];
                table.Add(name, setups[i].Label, $"{Median(list.Select(x => x.MsPerToken)):F2}", i == 0 ? "1" : $"{Median(ratios):F2}",
                    i == 0 ? "" : $"{ratios.Min():F2}–{ratios.Max():F2}", $"{last.LmCallsPerToken:F2}", $"{last.RmCallsPerToken:F3}", setups[i].Setup.Settings);
            }
        }
        table.Notes.Add("Prompt = random token ids; reward models are random: a scalar one of the LM's shape (RewardModel.Create) for CD and CARDS, " +
                        "a random causal LM of the LM's shape as the vocabulary head of FaRMA and GenARM (on 15m also a smaller one of the same vocabulary: the \"small RM\" rows).");
        table.Notes.Add($"ms/token = wall time of the whole run (prefill included) / tokens generated ({options.NewTokens} per run for tokenwise methods; " +
                        $"searches stop at the same budget); ÷ top-k = median over {rounds} interleaved rounds (each runs top-k and every method once, in turn) of that round's ratio.");
        table.Notes.Add("Targets (issue 19): FaRMA ÷ top-k ≤ 1.3 on 15m and ≤ 2.0 on 260k; CARDS RM calls/token ≤ 0.25.");
        return table;
    }

    /// <summary>The "small RM" of the 15M shape: dim 64, 2 layers, 2 heads, the LM's vocabulary and context.</summary>
    static ModelConfig SmallRewardShape(ModelConfig lm) => lm with { HiddenSize = 64, IntermediateSize = 172, NumLayers = 2, NumHeads = 2, NumKvHeads = 2 };

    sealed record Measurement(double MsPerToken, double LmCallsPerToken, double RmCallsPerToken);

    static Measurement Measure(CausalLM lm, IRewardModel? rm, IMethodOptions method, int[] prompt, int newTokens)
    {
        var options = new DecodingOptions { Method = method, MaxNewTokens = newTokens, StopAtEos = false, BatchSize = 1, Seed = 1 };
        var tokenizer = lm.Tokenizer ?? new IdTokenizer(lm.Config.VocabSize);
        var context = new DecodingContext(tokenizer, null, false, Array.Empty<string>(), newTokens);
        var engine = Engines.For(lm, DecodingEngine.Cached);
        var clock = Stopwatch.StartNew();
        int tokens;
        double lmCalls, rmCalls;
        if (method is ITokenwiseOptions tokenwise)
        {
            var rows = new[] { new RowProgress(context, 0, 0, prompt) };
            var decoder = new TokenwiseDecoder(engine, rm, tokenwise, options);
            decoder.Run([prompt], rows);
            tokens = rows[0].Tokens.Count;
            lmCalls = tokens; // the prefill, then one step per token but the last
            var c = decoder.Counts;
            rmCalls = rm is null ? 0 : 1 + c.Siblings + c.AppendCommits + c.Extensions + c.FullForwards;
        }
        else
        {
            var calls = new MethodCalls();
            var search = ((ISearchOptions)method).CreateSearch();
            var result = search.Run(new SearchContext(engine, rm, options, context) { Calls = calls }, [prompt], [0]);
            tokens = result[0].Best.Tokens.Count;
            lmCalls = calls.LanguageModel;
            rmCalls = calls.RewardModel;
        }
        double ms = clock.Elapsed.TotalMilliseconds;
        if (tokens == 0) throw new InvalidOperationException($"{method.Method.Name} generated no tokens");
        return new Measurement(ms / tokens, lmCalls / tokens, rmCalls / tokens);
    }
}
