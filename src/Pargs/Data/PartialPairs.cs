namespace Pargs.Data;

/// <summary>
/// The PARGS partial-pair construction at token level: pad the shorter response with EOS to the longer length L,
/// then every prefix length i = 1..L (or the subset the options pick) is a training pair "winner prefix i beats
/// loser prefix i". Padding with EOS (rather than dropping the extra positions) keeps the late prefixes of the
/// longer response, and teaches the model that a finished response is compared as finished.
/// </summary>
public static class PartialPairs
{
    /// <param name="pairIndex">Distinguishes pairs for <see cref="PrefixPositions.RandomSubset"/> (same index + seed → same positions).</param>
    public static TokenizedPair Build(
        int[] promptIds, int[] chosenIds, int[] rejectedIds, int eosId,
        PartialPairOptions? options = null, double? margin = null, int pairIndex = 0, int sourceLine = 0)
    {
        options ??= new PartialPairOptions();
        if (chosenIds.Length == 0 || rejectedIds.Length == 0)
            throw new ArgumentException("Both responses need at least one token.");
        int length = Math.Max(chosenIds.Length, rejectedIds.Length);
        return new TokenizedPair(
            promptIds, PadWithEos(chosenIds, length, eosId), PadWithEos(rejectedIds, length, eosId),
            SelectPrefixLengths(length, options, pairIndex), margin, chosenIds.Length, rejectedIds.Length, sourceLine);
    }

    /// <summary>The ascending prefix lengths in [MinPrefixLength, L] the options select; empty when L &lt; MinPrefixLength.</summary>
    public static int[] SelectPrefixLengths(int length, PartialPairOptions options, int pairIndex)
    {
        int min = Math.Max(1, options.MinPrefixLength);
        if (length < min) return [];
        var eligible = Enumerable.Range(min, length - min + 1);
        return options.Positions switch
        {
            PrefixPositions.All => eligible.ToArray(),
            PrefixPositions.FinalOnly => [length],
            PrefixPositions.Stride { Every: < 1 } s => throw new PargsException($"PartialPairOptions: Stride({s.Every}) is invalid (expected a stride of at least 1)."),
            PrefixPositions.Stride s => eligible.Where(i => i % s.Every == 0 || i == length).ToArray(),
            PrefixPositions.RandomSubset { Count: < 1 } r => throw new PargsException($"PartialPairOptions: RandomSubset({r.Count}, …) is invalid (expected a count of at least 1)."),
            PrefixPositions.RandomSubset r => SampleSorted(eligible.ToArray(), r.Count, MixSeed(r.Seed, pairIndex)),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Positions, "Unknown prefix positions."),
        };
    }

    static int[] PadWithEos(int[] ids, int length, int eosId)
    {
        var padded = new int[length];
        ids.CopyTo(padded, 0);
        Array.Fill(padded, eosId, ids.Length, length - ids.Length);
        return padded;
    }

    /// <summary>A partial Fisher–Yates draw of <paramref name="count"/> items, returned in ascending order.</summary>
    static int[] SampleSorted(int[] items, int count, int seed)
    {
        if (count >= items.Length) return items;
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            int j = random.Next(i, items.Length);
            (items[i], items[j]) = (items[j], items[i]);
        }
        var chosen = items[..count];
        Array.Sort(chosen);
        return chosen;
    }

    /// <summary>SplitMix64 finaliser: a per-pair seed that does not depend on the process (unlike HashCode.Combine).</summary>
    static int MixSeed(int seed, int pairIndex)
    {
        ulong z = unchecked(((ulong)(uint)seed << 32 | (uint)pairIndex) + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (int)(z ^ (z >> 31));
    }
}
