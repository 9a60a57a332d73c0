using Pargs.Decoding;
using Pargs.Evaluation;
using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Experiments;

/// <summary>
/// Stage 4 of the demo: every method on the held-out prompts. Sampling methods (top-k, Best-of-N, PARGS) run once
/// per seed; deterministic ones (ARGS, PARGS-G) once, since another seed would repeat them exactly. Guided methods
/// sweep w. Best-of-N (N = k) and ARGS are guided by the full-sequence reward model, PARGS and PARGS-G by the
/// partial one, as in the paper.
/// </summary>
public static class GenerationSweep
{
    /// <summary>One decoding run: a method, its options and the reward model it needs (null for top-k).</summary>
    public sealed record Run(DecodingOptions Options, IRewardModel? RewardModel);

    public static IReadOnlyList<Run> Plan(DemoOptions o, IRewardModel? full, IRewardModel? partial, int baseSeed)
    {
        var runs = new List<Run>();
        var seeds = Enumerable.Range(0, o.GenerationSeeds).Select(j => baseSeed + j).ToList();
        foreach (var method in o.Methods)
        {
            var rm = method is DecodingMethod.BestOfN or DecodingMethod.Args ? full
                : method is DecodingMethod.Pargs or DecodingMethod.PargsGreedy ? partial : null;
            if (method.NeedsRewardModel() && rm is null)
                throw new PargsException($"{method.Name()} needs a reward model, but none was trained (stage reward-models)");
            var weights = method.IsTokenwiseGuided() ? o.Weights : [1.0];
            var methodSeeds = method.Samples() ? seeds : seeds.Take(1).ToList();
            foreach (var w in weights)
                foreach (var seed in methodSeeds)
                    runs.Add(new Run(new DecodingOptions
                    {
                        Method = method, K = o.K, N = o.K, W = w, Seed = seed, MaxNewTokens = o.MaxNewTokens, BatchSize = o.BatchSize,
                    }, rm));
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
            string label = Label(run.Options);
            int offset = before;
            var results = TextGenerator.Generate(lm, run.RewardModel, prompts, run.Options,
                progress is null ? null : new InlineProgress<int>(d => progress.Report((offset + d, total, label))));
            records.AddRange(results.Select(r => r.ToRecord(run.Options, $"{generatorName}+{run.Options.Method.Name()}")));
            before += prompts.Count;
            progress?.Report((before, total, label));
        }
        return records;
    }

    public static string Label(DecodingOptions o)
        => o.Method.IsTokenwiseGuided() ? $"{o.Method.Name()} w={o.W:0.###} seed={o.Seed}" : $"{o.Method.Name()} seed={o.Seed}";
}
