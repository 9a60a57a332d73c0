namespace Pargs.Data;

/// <summary>
/// What <see cref="PairTokenizer"/> did: pairs in, pairs kept, pairs filtered because prompt + padded response
/// exceeded MaxLength or the response was shorter than MinPrefixLength, and how often a response had to be
/// tokenized on its own because the tokenizer merged tokens across the prompt/response boundary.
/// </summary>
public sealed record PairTokenizeReport(
    int PairsIn,
    int PairsKept,
    int FilteredTooLong,
    int FilteredTooShort,
    int ContinuationFallbacks,
    int LongestKeptSequence);

/// <summary>The tokenized pairs and the report of how they were made.</summary>
public sealed record PairTokenizeResult(IReadOnlyList<TokenizedPair> Pairs, PairTokenizeReport Report);
