using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// LM and RM share a vocabulary: candidate ids go straight to the RM. ONE batched RM pass scores the k
/// one-token extensions of every row over the RM's cached prefix (<see cref="BatchSession.Siblings"/>), and
/// the chosen one is committed by copying its keys/values (<see cref="BatchSession.CommitSibling"/>) — the
/// reward model never re-reads the sequence.
/// </summary>
public sealed class SharedVocabularyScorer : ICandidateScorer
{
    readonly IRewardModel rm;
    readonly BatchSession session;
    readonly CandidateScoringCounts counts;

    public SharedVocabularyScorer(IRewardModel rm, int batchSize, int capacity, CandidateScoringCounts counts)
    {
        this.rm = rm;
        this.counts = counts;
        session = new BatchSession(rm.Backbone, batchSize, capacity);
    }

    public void Prefill(IReadOnlyList<int[]> prompts)
    {
        using var scope = NewDisposeScope();
        session.Prefill(prompts);
    }

    public float[][] Score(Tensor candidates, IReadOnlyList<bool> active)
    {
        using var scope = NewDisposeScope();
        var rewards = rm.ScoreFromHidden(session.Siblings(candidates)); // [B, k]
        counts.Siblings += rewards.numel();
        return DecodingSteps.ToRows(rewards);
    }

    public void Commit(int[] chosen)
    {
        session.CommitSibling(chosen.Select(j => (long)j).ToArray());
        counts.SiblingCommits++;
    }

    public void Dispose() => session.Dispose();
}
