using Pargs.Decoding;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>
/// What decoding needs from a reward model: its shape (vocabulary, context), its tokenizer, whole-sequence
/// rewards (Best-of-N, the reference engine) and a scorer of candidate tokens over its own cached prefix —
/// the scorer, not the backbone, so that a reward model that is not a local causal transformer (an encoder,
/// a server) can guide decoding through the same seam.
/// </summary>
public interface IRewardModel
{
    ModelConfig Config { get; }
    ITokenizer? Tokenizer { get; }
    /// <summary>Where it came from, for messages.</summary>
    string Source { get; }

    /// <summary>Reward of each padded sequence [B, T] at its last real token → [B].</summary>
    Tensor SequenceRewards(Tensor ids, Tensor valid);

    /// <summary>
    /// A scorer of candidate LM tokens for the rows of a decoding session of <paramref name="lm"/>; ids pass
    /// straight through when the vocabularies agree, through text otherwise.
    /// </summary>
    ICandidateScorer OpenScorer(LanguageModelInfo lm, int capacity, CandidateScoringCounts counts);

    /// <summary>
    /// The cache-free reference scorer of the recompute engine (<c>--naive</c>), the oracle the cached scorer is
    /// tested against: by default a full forward per candidate over its ids (retokenized from scratch when the
    /// vocabularies differ); a model that reads text (an encoder) or reads every candidate at once
    /// (<see cref="VocabularyRewardModel"/>) supplies its own.
    /// </summary>
    ICandidateScorer OpenReferenceScorer(LanguageModelInfo lm, CandidateScoringCounts counts)
        => new FromScratchScorer(this, RewardRetokenizer.For(lm, this), counts);

    /// <summary>
    /// Rewards of whole LM sequences (Best-of-N): prompt ∘ completion, the completion's EOS included when it ended with
    /// one. By default through ids (retokenized when the vocabularies differ), right-padded in batches.
    /// </summary>
    float[] ScoreCompletions(LanguageModelInfo lm, IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> completions)
    {
        var bridge = RewardRetokenizer.For(lm, this); // null: LM ids go straight to the RM
        var sequences = prompts.Select((p, i) =>
        {
            int[] lmIds = [.. p, .. completions[i]];
            return bridge is null ? lmIds : bridge.RewardIds(lmIds);
        }).ToList();
        return SequenceRewardBatches.Score(this, sequences);
    }
}
