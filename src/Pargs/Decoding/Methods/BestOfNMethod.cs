using Pargs.Rewards;

namespace Pargs.Decoding.Methods;

/// <summary>
/// Best-of-N: N independent top-k samples per prompt, scored whole by a full-sequence reward model; the
/// highest-reward sample is the output.
/// </summary>
public sealed record BestOfNOptions : ISearchOptions
{
    /// <summary>Samples per prompt (the paper: N = k).</summary>
    public int N { get; init; } = MethodSettings.DefaultK;
    /// <summary>k of each top-k sample.</summary>
    public int K { get; init; } = MethodSettings.DefaultK;
    public double Temperature { get; init; } = MethodSettings.DefaultTemperature;

    public DecodingMethod Method => DecodingMethods.BestOfN;
    public void Validate(int vocabSize)
    {
        OptionChecks.K(K, vocabSize);
        OptionChecks.Temperature(Temperature, Method);
        if (N <= 0) throw new PargsException($"-n must be at least 1, got {N}");
    }
    public int? RecordK => K;
    public double? RecordW => null;
    public ISequenceSearch CreateSearch() => new BestOfNSearch(this);

    internal static BestOfNOptions From(MethodSettings s) => new()
    {
        K = s.K ?? MethodSettings.DefaultK,
        N = s.N ?? s.K ?? MethodSettings.DefaultK,
        Temperature = s.Temperature ?? MethodSettings.DefaultTemperature,
    };
}

/// <summary>
/// The prompt is repeated as N rows of one batch (each with its own seeded stream, sample index j), sampled with
/// top-k by the shared loop, and every finished sample is scored at its last token; a reward model with another
/// tokenizer reads each sample's text retokenized (<see cref="RewardRetokenizer.RewardIds"/>).
/// </summary>
sealed class BestOfNSearch(BestOfNOptions options) : ISequenceSearch
{
    public IReadOnlyList<(RowProgress Best, double Reward)> Run(SearchContext context, IReadOnlyList<int[]> prompts, IReadOnlyList<int> promptIndices)
    {
        var rm = options.Method.RewardModelFor(context.RewardModel)!;
        int n = options.N;
        var sampler = new TokenwiseDecoder(context.Engine, null, new TopKOptions { K = options.K, Temperature = options.Temperature }, context.Options);
        var expandedPrompts = prompts.SelectMany(p => Enumerable.Repeat(p, n)).ToList();
        var rows = promptIndices.SelectMany((pi, i) => Enumerable.Range(0, n).Select(j => new RowProgress(context.Rows, pi, j, prompts[i]))).ToList();
        sampler.Run(expandedPrompts, rows);

        var rewards = SequenceRewards(context, rm, expandedPrompts, rows);
        // NaN is never the larger reward: without this a broken model would quietly crown every prompt's first sample.
        foreach (double reward in rewards)
            if (!double.IsFinite(reward))
                throw new PargsException($"the reward model gave a Best-of-N sample the reward {reward}: check its weights and config");
        var result = new List<(RowProgress, double)>();
        for (int i = 0; i < prompts.Count; i++)
        {
            int best = i * n;
            for (int j = i * n + 1; j < (i + 1) * n; j++)
                if (rewards[j] > rewards[best]) best = j;
            result.Add((rows[best], rewards[best]));
        }
        return result;
    }

    /// <summary>Reward of prompt + completion (+ EOS when the row ended with one), batched with right padding.</summary>
    static double[] SequenceRewards(SearchContext context, IRewardModel rm, IReadOnlyList<int[]> prompts, IReadOnlyList<RowProgress> rows)
    {
        var completions = rows.Select(r => r.Tokens.Concat(r.EosToken is { } e ? new[] { e } : Array.Empty<int>()).ToArray()).ToList();
        return rm.ScoreCompletions(context.Engine.Info, prompts, completions).Select(r => (double)r).ToArray();
    }
}
