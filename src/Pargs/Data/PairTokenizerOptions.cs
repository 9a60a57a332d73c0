namespace Pargs.Data;

/// <summary>Options of <see cref="PairTokenizer"/>.</summary>
public sealed record PairTokenizerOptions
{
    /// <summary>Longest prompt + padded response kept; longer pairs are filtered out and counted, never truncated.</summary>
    public int MaxLength { get; init; } = 512;

    public PartialPairOptions PartialPairs { get; init; } = new();

    /// <summary>Ids must be below this (the reward model's vocabulary); defaults to the tokenizer's vocabulary size.</summary>
    public int? VocabSize { get; init; }

    /// <summary>The padding id for the shorter response; defaults to the tokenizer's EOS.</summary>
    public int? EosId { get; init; }
}
