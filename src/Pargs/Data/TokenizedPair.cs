namespace Pargs.Data;

/// <summary>One explicit prefix pair: prompt + the first <see cref="PrefixLength"/> tokens of each (padded) response.</summary>
public sealed record PrefixPair(int PrefixLength, int[] WinnerIds, int[] LoserIds);

/// <summary>
/// A preference pair as token ids, ready for partial-reward training. Both responses are padded with EOS to the
/// same length L, so prefix i of the winner and prefix i of the loser are directly comparable. One sequence per
/// side is enough: a causal reward model computes the reward of every prefix in one forward pass
/// (reward at position |prompt| + i − 1 = reward of prefix i), and <see cref="PrefixLengths"/> says which of those
/// positions enter the loss. <see cref="ChosenLength"/> / <see cref="RejectedLength"/> are the unpadded lengths.
/// </summary>
public sealed record TokenizedPair(
    int[] PromptIds,
    int[] ChosenIds,
    int[] RejectedIds,
    int[] PrefixLengths,
    double? Margin,
    int ChosenLength,
    int RejectedLength,
    int SourceLine = 0)
{
    /// <summary>L: the padded response length (equal on both sides).</summary>
    public int ResponseLength => ChosenIds.Length;

    /// <summary>Prompt + padded response: the length of each side's forward pass.</summary>
    public int SequenceLength => PromptIds.Length + ResponseLength;

    public int[] ChosenSequence => [.. PromptIds, .. ChosenIds];
    public int[] RejectedSequence => [.. PromptIds, .. RejectedIds];

    /// <summary>
    /// The explicit prefix pairs (prompt + first i response tokens, for each i in <see cref="PrefixLengths"/>).
    /// Quadratic in L: the test and benchmark oracle for the one-forward training path, not for training itself.
    /// </summary>
    public IReadOnlyList<PrefixPair> MaterializePrefixes() =>
        PrefixLengths.Select(i => new PrefixPair(i, [.. PromptIds, .. ChosenIds[..i]], [.. PromptIds, .. RejectedIds[..i]])).ToList();
}
