using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Evaluation;
using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Experiments;

/// <summary>
/// What the generate stage decodes: the methods, k (also N of Best-of-N and K of blockwise CD), the swept w, seeds
/// and lengths; M of blockwise CD (<paramref name="BlockLength"/>) and r* of CARDS (<paramref name="TargetReward"/>,
/// on the partial reward model's scale; needed only when CARDS runs).
/// </summary>
public sealed record SweepSettings(IReadOnlyList<DecodingMethod> Methods, int K, IReadOnlyList<double> Weights, int Seeds,
    int MaxNewTokens, int BatchSize, bool Dpo, int BlockLength = ControlledDecodingOptions.DefaultBlockLength, double? TargetReward = null, bool Ppo = false);

/// <summary>
/// The generate stage: every method on the held-out prompts. Sampling methods (top-k, Best-of-N, PARGS) run once
/// per seed; deterministic ones (ARGS, PARGS-G) once, since another seed would repeat them exactly. Guided methods
/// sweep w. Each method is guided by the reward model of its <see cref="DecodingMethod.GuideObjective"/>: Best-of-N
/// (N = k) and ARGS by the full-sequence one, PARGS, PARGS-G, blockwise CD (K = k) and CARDS by the partial one, as
/// in their papers, FaRMA and FaRMA-G by a FaRMA reward model, GenARM by a GenARM one. The "dpo" row is top-k
/// sampling (same k, T, seeds) from the DPO policy instead of the base LM; the "ppo" row likewise samples from the PPO policy.
/// <para>Samples of a method with a per-token policy (<see cref="PolicyLogProbs"/>) carry their log-probability under
/// it and under the base LM, for the reward–KL frontier.</para>
/// </summary>
public static class GenerationSweep
{
    public const string DpoMethod = "dpo";
    public const string PpoMethod = "ppo";

    /// <summary>One decoding run: a method, its options, the reward model it needs (null for top-k) and the LM to
    /// decode with (null: the base LM); <see cref="MethodName"/> overrides the method written into the records.</summary>
    public sealed record Run(DecodingOptions Options, IRewardModel? RewardModel, CausalLM? Policy = null, string? MethodName = null);

    /// <param name="guides">The reward models the run has, by objective (a method whose objective is missing is an error).</param>
    public static IReadOnlyList<Run> Plan(SweepSettings s, IReadOnlyDictionary<RewardObjective, IRewardModel> guides, CausalLM? dpoPolicy, int baseSeed, CausalLM? ppoPolicy = null)
    {
        var runs = new List<Run>();
        var seeds = Enumerable.Range(0, s.Seeds).Select(j => baseSeed + j).ToList();
        DecodingOptions Options(DecodingMethod method, double w, int seed) => new()
        {
            Method = method.Options(new MethodSettings { K = s.K, N = s.K, W = w, Continuations = s.K, BlockLength = s.BlockLength, TargetReward = s.TargetReward }),
            Seed = seed, MaxNewTokens = s.MaxNewTokens, BatchSize = s.BatchSize,
        };
        foreach (var method in s.Methods)
        {
            var rm = method.GuideObjective is { } objective ? guides.GetValueOrDefault(objective) : null;
            if (method.NeedsRewardModel && rm is null)
                throw new PargsException($"{method.Name} needs a {method.GuideObjective?.ToConfigValue()} reward model, but none was trained or given");
            var weights = method.IsTokenwiseGuided ? s.Weights : [1.0];
            var methodSeeds = method.Samples ? seeds : seeds.Take(1).ToList();
            foreach (var w in weights)
                foreach (var seed in methodSeeds)
                    runs.Add(new Run(Options(method, w, seed), rm));
        }
        if (s.Dpo)
        {
            if (dpoPolicy is null) throw new PargsException("the dpo row needs a DPO policy, but none was trained (stage dpo)");
            foreach (var seed in seeds) runs.Add(new Run(Options(DecodingMethods.TopK, 1.0, seed), null, dpoPolicy, DpoMethod));
        }
        if (s.Ppo)
        {
            if (ppoPolicy is null) throw new PargsException("the ppo row needs a PPO policy, but none was trained (stage ppo)");
            foreach (var seed in seeds) runs.Add(new Run(Options(DecodingMethods.TopK, 1.0, seed), null, ppoPolicy, PpoMethod));
        }
        return runs;
    }

    public static List<GenerationRecord> Execute(CausalLM lm, IReadOnlyList<Run> runs, IReadOnlyList<string> prompts, string generatorName,
        IProgress<(int Done, int Total, string Run)>? progress = null)
    {
        var records = new List<GenerationRecord>();
        int total = runs.Count * prompts.Count, before = 0;
        foreach (var run in runs)
        {
            string label = Label(run);
            int offset = before;
            var promptsDone = progress is null ? null : new InlineProgress<int>(d => progress.Report((offset + d, total, label)));
            string method = run.MethodName ?? run.Options.Method.Method.Name;
            if (PolicyLogProbs.TemperatureOf(run.Options.Method) is null)
            {
                var results = TextGenerator.Generate(run.Policy ?? lm, run.RewardModel, prompts, run.Options, promptsDone);
                records.AddRange(results.Select(r => r.ToRecord(run.Options, $"{generatorName}+{method}") with { Method = method }));
            }
            else
            {
                var (results, drawn, logProbs) = PolicyLogProbs.Generate(run.Policy ?? lm, run.RewardModel, prompts, run.Options, promptsDone);
                var tokenizer = lm.Tokenizer ?? throw new PargsException($"{lm.Source}: the model has no tokenizer");
                records.AddRange(results.Select(r => r.ToRecord(run.Options, $"{generatorName}+{method}") with
                {
                    Method = method,
                    PolicyLogProb = logProbs[r.PromptIndex],
                    // Under the BASE LM (also for the DPO row): the frontier's distance is to the model every method starts from.
                    BaseLogProb = PolicyLogProbs.BaseLogProb(lm, tokenizer.Encode(r.Prompt, addBos: run.Options.AddSpecialTokens), drawn[r.PromptIndex]),
                }));
            }
            before += prompts.Count;
            progress?.Report((before, total, label));
        }
        return records;
    }

    public static string Label(Run run)
    {
        var o = run.Options;
        string method = run.MethodName ?? o.Method.Method.Name;
        return o.Method.RecordW is { } w ? $"{method} w={w:0.###} seed={o.Seed}" : $"{method} seed={o.Seed}";
    }
}
