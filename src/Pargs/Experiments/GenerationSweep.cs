using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Evaluation;
using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Experiments;

/// <summary>What the generate stage decodes: the methods, k (also N of Best-of-N), the swept w, seeds and lengths.</summary>
public sealed record SweepSettings(IReadOnlyList<DecodingMethod> Methods, int K, IReadOnlyList<double> Weights, int Seeds,
    int MaxNewTokens, int BatchSize, bool Dpo, bool Ppo = false);

/// <summary>
/// The generate stage: every method on the held-out prompts. Sampling methods (top-k, Best-of-N, PARGS) run once
/// per seed; deterministic ones (ARGS, PARGS-G) once, since another seed would repeat them exactly. Guided methods
/// sweep w. Best-of-N (N = k) and ARGS are guided by the full-sequence reward model, PARGS and PARGS-G by the
/// partial one, as in the paper. The "dpo" row is top-k sampling (same k, T, seeds) from the DPO policy instead of
/// the base LM; the "ppo" row likewise samples from the PPO policy.
/// </summary>
public static class GenerationSweep
{
    public const string DpoMethod = "dpo";
    public const string PpoMethod = "ppo";

    /// <summary>One decoding run: a method, its options, the reward model it needs (null for top-k) and the LM to
    /// decode with (null: the base LM); <see cref="MethodName"/> overrides the method written into the records.</summary>
    public sealed record Run(DecodingOptions Options, IRewardModel? RewardModel, CausalLM? Policy = null, string? MethodName = null);

    public static IReadOnlyList<Run> Plan(SweepSettings s, IRewardModel? full, IRewardModel? partial, CausalLM? dpoPolicy, int baseSeed, CausalLM? ppoPolicy = null)
    {
        var runs = new List<Run>();
        var seeds = Enumerable.Range(0, s.Seeds).Select(j => baseSeed + j).ToList();
        DecodingOptions Options(DecodingMethod method, double w, int seed) => new()
        {
            Method = method.Options(new MethodSettings { K = s.K, N = s.K, W = w }), Seed = seed, MaxNewTokens = s.MaxNewTokens, BatchSize = s.BatchSize,
        };
        foreach (var method in s.Methods)
        {
            var rm = method.GuideObjective switch { RewardObjective.Full => full, RewardObjective.Partial => partial, _ => null };
            if (method.NeedsRewardModel && rm is null)
                throw new PargsException($"{method.Name} needs a reward model, but none was trained (stage reward-models)");
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
            var results = TextGenerator.Generate(run.Policy ?? lm, run.RewardModel, prompts, run.Options,
                progress is null ? null : new InlineProgress<int>(d => progress.Report((offset + d, total, label))));
            string method = run.MethodName ?? run.Options.Method.Method.Name;
            records.AddRange(results.Select(r => r.ToRecord(run.Options, $"{generatorName}+{method}") with { Method = method }));
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
