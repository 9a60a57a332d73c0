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

    /// <summary>
    /// Thread counts the machine can run: a row labelled with more threads than CPUs would measure fewer
    /// (ComputeThreads caps them), so a benchmark refuses them instead.
    /// </summary>
    public static void Threads(IReadOnlyList<int> threads)
    {
        AtLeastOne(threads, "--threads");
        foreach (int t in threads)
            if (t > Environment.ProcessorCount)
                throw new PargsException($"--threads {t}: this process may use {Environment.ProcessorCount} logical CPUs");
    }

    /// <summary>Every --models name is one the benchmark knows, checked before the first model runs for minutes.</summary>
    public static void KnownModels(IReadOnlyList<string> names, params string[] known)
    {
        if (names.Count == 0) throw new PargsException("--models: expected at least one model");
        foreach (var name in names)
            if (!known.Contains(name.ToLowerInvariant()))
                throw new PargsException($"--models: unknown model \"{name}\" (expected {string.Join(", ", known)})");
    }
}
