using Pargs.Rewards;

namespace Pargs.Experiments;

/// <summary>
/// r* of CARDS for a pipeline run: the reward its acceptance threshold rises to is a point on the guiding reward
/// model's own scale (their code: 8.5 for their reward model), so the pipelines take it from the run's own data — a
/// high quantile of the partial reward model's rewards of prompt + response over the TRAIN pairs (both responses
/// of every pair: top-k samples of the base LM), as <c>--target-reward</c>'s help suggests. The held-out prompts
/// play no part in it.
/// </summary>
public static class CardsTarget
{
    /// <summary>The default quantile: "good" = better than nine base-LM samples in ten.</summary>
    public const double DefaultQuantile = 0.9;

    public static double FromPairs(IRewardModel partial, string trainPairsPath, int maxLength, double quantile = DefaultQuantile)
    {
        if (!(quantile > 0 && quantile < 1)) throw new PargsException($"the CARDS target quantile must be in (0, 1), got {quantile}");
        var tokenizer = partial.Tokenizer ?? throw new PargsException($"{partial.Source}: the reward model has no tokenizer");
        var pairs = PairFiles.Tokenize(trainPairsPath, tokenizer, maxLength, finalOnly: true);
        var sequences = pairs.SelectMany(p => new[]
        {
            p.PromptIds.Concat(p.ChosenIds.Take(p.ChosenLength)).ToArray(),
            p.PromptIds.Concat(p.RejectedIds.Take(p.RejectedLength)).ToArray(),
        }).ToList();
        float[] rewards;
        using (TorchSharp.torch.no_grad())
            rewards = SequenceRewardBatches.Score(partial, sequences);
        return Quantile(rewards.Select(r => (double)r).ToArray(), quantile);
    }

    /// <summary>The q-quantile with linear interpolation between order statistics (numpy's default, "linear").</summary>
    public static double Quantile(double[] values, double q)
    {
        if (values.Length == 0) throw new PargsException("no rewards to take a quantile of");
        var sorted = values.Order().ToArray();
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}
