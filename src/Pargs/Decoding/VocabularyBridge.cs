using Pargs.Engine;
using Pargs.Rewards;

namespace Pargs.Decoding;

/// <summary>
/// Whether an LM and a reward model agree on token ids, so candidates can pass straight through (the cached
/// sibling hot path, <see cref="SharedVocabularyScorer"/>). They agree when both vocabularies have the same
/// size and every token stands for the same bytes (and is special in both or neither); otherwise candidates
/// go through text (<see cref="RewardRetokenizer"/>, <see cref="RetokenizingScorer"/>).
/// </summary>
public static class VocabularyBridge
{
    public static bool SharesVocabulary(LanguageModelInfo lm, IRewardModel rm)
    {
        if (lm.VocabSize != rm.Config.VocabSize) return false;
        // Without both tokenizers there is nothing to compare: equal sizes are taken as the same vocabulary.
        if (lm.Tokenizer is not { } a || rm.Tokenizer is not { } b) return true;
        if (a.VocabSize != b.VocabSize) return false;
        for (int id = 0; id < a.VocabSize; id++)
            if (a.IsSpecial(id) != b.IsSpecial(id) || !a.TokenBytes(id).AsSpan().SequenceEqual(b.TokenBytes(id)))
                return false;
        return true;
    }

    /// <summary>
    /// The candidate scorer for guided decoding: ids straight through when the vocabularies agree, through
    /// text otherwise. Throws a <see cref="PargsException"/> when they differ and a tokenizer is missing.
    /// </summary>
    public static ICandidateScorer ScorerFor(LanguageModelInfo lm, RewardModel rm, int capacity, CandidateScoringCounts counts)
        => RewardRetokenizer.For(lm, rm) is { } bridge
            ? new RetokenizingScorer(rm, bridge, capacity, counts)
            : new SharedVocabularyScorer(rm, capacity, counts);
}
