namespace Pargs.Evaluation;

/// <summary>
/// Perplexity = exp(−mean log p) over tokens, with natural-log probabilities. Over several texts the mean is
/// token-weighted (one pooled mean, the usual corpus perplexity), not a mean of per-text perplexities.
/// The log-probabilities come from a delegate (the CLI passes the base LM scoring the continuation given
/// the prompt), so this class stays model-free. No tokens → NaN.
/// </summary>
public static class Perplexity
{
    public static double FromLogProbs(IReadOnlyList<double> logProbs)
    {
        if (logProbs.Count == 0) return double.NaN;
        double sum = 0;
        foreach (var lp in logProbs)
        {
            if (lp > 1e-9) throw new ArgumentException($"A log-probability must be ≤ 0, got {lp}.");
            sum += lp;
        }
        return Math.Exp(-sum / logProbs.Count);
    }

    /// <param name="pairs">(prompt, continuation) pairs.</param>
    /// <param name="continuationLogProbs">Per-token log p of the continuation's tokens given the prompt.</param>
    public static double OfTexts(
        IEnumerable<(string Prompt, string Continuation)> pairs,
        Func<string, string, IReadOnlyList<double>> continuationLogProbs)
    {
        var pooled = new List<double>();
        foreach (var (prompt, continuation) in pairs)
            pooled.AddRange(continuationLogProbs(prompt, continuation));
        return FromLogProbs(pooled);
    }
}
