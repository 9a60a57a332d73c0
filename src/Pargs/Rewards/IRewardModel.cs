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
    /// The cache-free scorer of the reference engine (<c>--naive</c>): by default every candidate is a full
    /// forward of the whole sequence (<see cref="FromScratchScorer"/>); a reward model whose head reads every
    /// candidate at once (<see cref="VocabularyRewardModel"/>) recomputes its one row instead.
    /// </summary>
    ICandidateScorer OpenReferenceScorer(LanguageModelInfo lm, CandidateScoringCounts counts)
        => new FromScratchScorer(this, RewardRetokenizer.For(lm, this), counts);
}
