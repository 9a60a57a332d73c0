namespace Pargs.Benchmarks;

/// <summary>The option checks the benchmarks share: a bad value is one clear error before any model loads.</summary>
internal static class BenchChecks
{
    /// <summary>Every value is at least 1 (and there is one): counts, lengths, sizes.</summary>
    public static void AtLeastOne(IReadOnlyList<int> values, string option)
    {
        if (values.Count == 0) throw new PargsException($"{option}: expected at least one value");
        foreach (int v in values)
            if (v < 1) throw new PargsException($"{option} must be at least 1, got {v}");
    }
}
