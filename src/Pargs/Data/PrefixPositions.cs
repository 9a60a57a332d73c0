namespace Pargs.Data;

/// <summary>Which prefix lengths i (1..L) of a response pair enter the reward-model loss.</summary>
public abstract record PrefixPositions
{
    /// <summary>Every prefix 1..L: the PARGS construction.</summary>
    public sealed record All : PrefixPositions;

    /// <summary>Multiples of <paramref name="Every"/>, always keeping the final position L.</summary>
    public sealed record Stride(int Every) : PrefixPositions;

    /// <summary><paramref name="Count"/> distinct positions drawn per pair, reproducible from <paramref name="Seed"/> and the pair's index.</summary>
    public sealed record RandomSubset(int Count, int Seed) : PrefixPositions;

    /// <summary>Only L: a full-sequence reward model (the ARGS baseline), trained on the same data.</summary>
    public sealed record FinalOnly : PrefixPositions;
}
