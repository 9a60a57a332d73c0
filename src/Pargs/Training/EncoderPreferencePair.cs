using Pargs.Data;
using Pargs.Rewards;
using Pargs.Tokenizers;

namespace Pargs.Training;

/// <summary>
/// A preference pair as an encoder reward model trains on it: the texts, where each response's token prefixes end
/// (<see cref="EncoderPrefixCuts"/>), and the prefix lengths i that enter the loss. L is the longer response's token
/// count; the paper pads the shorter response with EOS to L, and for an encoder that means its text has ended:
/// prefix i &gt; its length is the whole shorter response (still compared, as a finished text, with the longer one's
/// prefix i). A causal model reads every prefix from one forward; an encoder must read each prefix as its own input,
/// so a pair costs 2·|<see cref="PrefixLengths"/>| rows per step (fewer after identical inputs are merged).
/// </summary>
public sealed record EncoderPreferencePair(
    string Prompt, string Chosen, string Rejected, int[] ChosenCuts, int[] RejectedCuts, int[] PrefixLengths,
    double? Margin = null, int SourceLine = 0)
{
    /// <summary>L: the longer response's length in the reward model's tokens.</summary>
    public int ResponseLength => Math.Max(ChosenCuts.Length, RejectedCuts.Length);

    /// <summary>Prefix i of the chosen response (its whole text once i passes its length).</summary>
    public string ChosenPrefix(int i) => Prefix(Chosen, ChosenCuts, i);
    public string RejectedPrefix(int i) => Prefix(Rejected, RejectedCuts, i);

    static string Prefix(string text, int[] cuts, int i) => i >= cuts.Length ? text : text[..cuts[i - 1]];

    /// <summary>Builds the pair's cuts with <paramref name="tokenizer"/> and picks its prefix lengths as <see cref="PartialPairs.SelectPrefixLengths"/> does.</summary>
    public static EncoderPreferencePair Build(HuggingFaceTokenizer tokenizer, PreferencePair pair, PartialPairOptions prefixes, int pairIndex)
    {
        var chosen = EncoderPrefixCuts.Of(tokenizer, pair.Chosen);
        var rejected = EncoderPrefixCuts.Of(tokenizer, pair.Rejected);
        int length = Math.Max(chosen.Length, rejected.Length);
        var lengths = length == 0 ? [] : PartialPairs.SelectPrefixLengths(length, prefixes, pairIndex);
        return new EncoderPreferencePair(pair.Prompt, pair.Chosen, pair.Rejected, chosen, rejected, lengths, pair.Margin, pair.SourceLine);
    }
}

/// <summary>What <see cref="EncoderPreferencePairs.Build"/> kept and why it dropped the rest.</summary>
public sealed record EncoderPairReport(int PairsIn, int PairsKept, int FilteredTooLong, int FilteredTooShort, double MeanPrefixesPerPair, int LongestInput);

/// <summary>The pairs and the report of <see cref="EncoderPreferencePairs.Build"/>.</summary>
public sealed record EncoderPairResult(IReadOnlyList<EncoderPreferencePair> Pairs, EncoderPairReport Report);

public static class EncoderPreferencePairs
{
    /// <summary>
    /// The text pairs an encoder reward model trains on: prefix cuts in its tokenizer's tokens, prefix lengths chosen by
    /// <paramref name="prefixes"/> (every prefix, a stride, a seeded sample, or only L for a full-sequence model). A pair
    /// whose longest input (prompt with the whole longer response, as <paramref name="model"/>'s input setting encodes it)
    /// has more than <paramref name="maxLength"/> tokens is dropped and counted, never truncated; so is a pair with an
    /// empty response.
    /// </summary>
    public static EncoderPairResult Build(EncoderRewardModel model, IReadOnlyList<PreferencePair> pairs, PartialPairOptions prefixes, int maxLength)
    {
        int limit = Math.Min(maxLength, model.Classifier.Config.MaxTokens);
        var kept = new List<EncoderPreferencePair>();
        int tooLong = 0, tooShort = 0, longest = 0;
        long prefixCount = 0;
        for (int index = 0; index < pairs.Count; index++)
        {
            var pair = pairs[index];
            if (pair.Chosen.Length == 0 || pair.Rejected.Length == 0) { tooShort++; continue; }
            var built = EncoderPreferencePair.Build(model.EncoderTokenizer, pair, prefixes, index);
            if (built.ChosenCuts.Length == 0 || built.RejectedCuts.Length == 0 || built.PrefixLengths.Length == 0) { tooShort++; continue; }
            int inputLength = Math.Max(model.EncodeUnchecked(pair.Prompt, pair.Chosen).Ids.Length, model.EncodeUnchecked(pair.Prompt, pair.Rejected).Ids.Length);
            if (inputLength > limit) { tooLong++; continue; }
            kept.Add(built);
            longest = Math.Max(longest, inputLength);
            prefixCount += built.PrefixLengths.Length;
        }
        return new EncoderPairResult(kept, new EncoderPairReport(pairs.Count, kept.Count, tooLong, tooShort,
            kept.Count == 0 ? 0 : (double)prefixCount / kept.Count, longest));
    }
}
