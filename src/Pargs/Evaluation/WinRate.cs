namespace Pargs.Evaluation;

/// <summary>
/// Paired win/tie/loss of a candidate against a baseline, judged by a score per prompt id: a win when
/// candidate − baseline &gt; tolerance, a loss when &lt; −tolerance, a tie otherwise. The default tolerance 1e-9
/// means "equal up to floating-point noise". Both sides must cover exactly the same prompt ids.
/// </summary>
public static class WinRate
{
    public const double DefaultTieTolerance = 1e-9;

    public static WinTieLoss Compare(
        IReadOnlyDictionary<string, double> candidate,
        IReadOnlyDictionary<string, double> baseline,
        double tieTolerance = DefaultTieTolerance)
    {
        if (tieTolerance < 0 || double.IsNaN(tieTolerance))
            throw new ArgumentOutOfRangeException(nameof(tieTolerance), "The tie tolerance must be ≥ 0.");
        var onlyCandidate = candidate.Keys.Where(id => !baseline.ContainsKey(id)).ToList();
        var onlyBaseline = baseline.Keys.Where(id => !candidate.ContainsKey(id)).ToList();
        if (onlyCandidate.Count > 0 || onlyBaseline.Count > 0)
            throw new PargsException("Win rate needs the same prompts on both sides: " +
                $"{onlyCandidate.Count} prompt id(s) only in the candidate ({Preview(onlyCandidate)}), " +
                $"{onlyBaseline.Count} only in the baseline ({Preview(onlyBaseline)}).");

        int wins = 0, ties = 0, losses = 0;
        foreach (var (id, score) in candidate)
        {
            double difference = score - baseline[id];
            if (double.IsNaN(difference))
                throw new PargsException($"Win rate: prompt id '{id}' has a NaN score.");
            if (difference > tieTolerance) wins++;
            else if (difference < -tieTolerance) losses++;
            else ties++;
        }
        return new WinTieLoss(wins, ties, losses);
    }

    private static string Preview(List<string> ids) =>
        ids.Count == 0 ? "none" : string.Join(", ", ids.Take(5).Select(id => $"'{id}'")) + (ids.Count > 5 ? ", …" : "");
}
