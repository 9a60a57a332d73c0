namespace Pargs.Data;

/// <summary>Seeded train/eval split: the same items, fraction and seed always give the same split.</summary>
public static class DataSplit
{
    /// <summary>
    /// Puts round(n × <paramref name="evalFraction"/>) items, drawn with <paramref name="seed"/>, into Eval and the
    /// rest into Train; both keep the input order (so a split is easy to read and diff).
    /// </summary>
    public static (IReadOnlyList<T> Train, IReadOnlyList<T> Eval) Split<T>(IReadOnlyList<T> items, double evalFraction, int seed)
    {
        if (!(evalFraction >= 0 && evalFraction < 1))
            throw new PargsException($"Eval fraction {evalFraction} is invalid (expected a number in [0, 1)).");
        int evalCount = (int)Math.Round(items.Count * evalFraction, MidpointRounding.AwayFromZero);
        var order = Enumerable.Range(0, items.Count).ToArray();
        new Random(seed).Shuffle(order);
        var isEval = new bool[items.Count];
        foreach (var index in order[..evalCount]) isEval[index] = true;
        var train = new List<T>(items.Count - evalCount);
        var eval = new List<T>(evalCount);
        for (int i = 0; i < items.Count; i++) (isEval[i] ? eval : train).Add(items[i]);
        return (train, eval);
    }
}
