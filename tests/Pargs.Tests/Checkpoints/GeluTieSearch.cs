namespace Pargs.Tests.Checkpoints;

/// <summary>
/// The greedy search for the float16 rounding ties llama.cpp resolved the other way (<see cref="LlamaCppGeluTieTests"/>).
/// A candidate is a GELU input within the tie distance of a float16 midpoint; toggling it is kept only while every flip
/// in the set is still a tie in the forward that resolves them all (a flip moves the next layer's inputs).
/// <list type="number">
/// <item>Position by position, in order: toggle the tie at that position that most lowers that position's gap, repeat
/// until none lowers it. WHY first: the models are causal, so an input at position p moves only positions ≥ p; fixing
/// positions in order never undoes an earlier one, where a greedy on the worst gap alone stalls when lowering the worst
/// position raises a later one above it (GPT-NeoX on AVX2 stalled at 6.2e-4 that way).</item>
/// <item>Then on the worst gap over all positions: toggle the tie (at or before the worst position) that most lowers it,
/// repeat until none does.</item>
/// <item>Then drop every flip whose removal does not raise the worst gap.</item>
/// </list>
/// Each phase is bounded by <c>maxRounds</c> toggles (per position in the first).
/// </summary>
static class GeluTieSearch
{
    public sealed record Result(HashSet<(int, int, int)> Flips, double WorstGap, int Forwards);

    /// <summary>The committed form of a flip set: "layer,position,column" joined by ';', sorted.</summary>
    public static string Format(IEnumerable<(int Layer, int Position, int Column)> flips) =>
        string.Join(';', flips.Order().Select(f => $"{f.Layer},{f.Position},{f.Column}"));

    public static HashSet<(int, int, int)> Parse(string list) =>
        list.Length == 0 ? [] : list.Split(';').Select(f => f.Split(',').Select(int.Parse).ToArray()).Select(f => (f[0], f[1], f[2])).ToHashSet();

    public static Result Run(GeluTieCase tieCase, double tieDistance, int maxRounds)
    {
        var flips = new HashSet<(int, int, int)>();
        var current = tieCase.Run(flips);
        int forwards = 1;
        for (int position = 0; position < current.Gaps.Length; position++)
        {
            int at = position;
            for (int round = 0; round < maxRounds; round++)
            {
                var candidates = current.Distances.Where(d => d.Value <= tieDistance && d.Key.Position == at).Select(d => ((int, int, int))d.Key)
                    .Concat(flips.Where(f => f.Item2 == at));
                if (!TryBestToggle(tieCase, tieDistance, ref flips, ref current, candidates, r => r.Gaps[at], ref forwards)) break;
            }
        }
        for (int round = 0; round < maxRounds; round++)
        {
            int worst = current.WorstPosition;
            var candidates = current.Distances.Where(d => d.Value <= tieDistance && d.Key.Position <= worst).Select(d => ((int, int, int))d.Key)
                .Concat(flips.Where(f => f.Item2 <= worst));
            if (!TryBestToggle(tieCase, tieDistance, ref flips, ref current, candidates, r => r.WorstGap, ref forwards)) break;
        }
        foreach (var flip in flips.Order().ToList())
        {
            var trial = new HashSet<(int, int, int)>(flips);
            trial.Remove(flip);
            var result = tieCase.Run(trial);
            forwards++;
            if (result.WorstGap <= current.WorstGap && result.AllTies(trial, tieDistance)) (flips, current) = (trial, result);
        }
        return new Result(flips, current.WorstGap, forwards);
    }

    /// <summary>Toggles the candidate that most lowers <paramref name="objective"/> (keeping every flip a tie); false when none lowers it.</summary>
    static bool TryBestToggle(GeluTieCase tieCase, double tieDistance, ref HashSet<(int, int, int)> flips, ref GeluTieCase.Resolution current,
        IEnumerable<(int, int, int)> candidates, Func<GeluTieCase.Resolution, double> objective, ref int forwards)
    {
        (HashSet<(int, int, int)> Flips, GeluTieCase.Resolution Result)? best = null;
        double bestValue = objective(current);
        foreach (var candidate in candidates.Distinct().Order().ToList())
        {
            var trial = new HashSet<(int, int, int)>(flips);
            if (!trial.Remove(candidate)) trial.Add(candidate);
            var result = tieCase.Run(trial);
            forwards++;
            if (objective(result) < bestValue && result.AllTies(trial, tieDistance)) (best, bestValue) = ((trial, result), objective(result));
        }
        if (best is not { } kept) return false;
        (flips, current) = kept;
        return true;
    }
}
