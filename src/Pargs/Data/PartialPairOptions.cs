namespace Pargs.Data;

/// <summary>Options of <see cref="PartialPairs"/>: which prefix positions to train on, and the shortest prefix that counts.</summary>
public sealed record PartialPairOptions
{
    public PrefixPositions Positions { get; init; } = new PrefixPositions.All();

    /// <summary>Prefixes shorter than this many response tokens are not trained on (1 = every prefix).</summary>
    public int MinPrefixLength { get; init; } = 1;
}
