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
    readonly RewardModel rm;
    readonly BatchSession session;
    readonly CandidateScoringCounts counts;
    readonly int capacity;

    public SharedVocabularyScorer(RewardModel rm, int capacity, CandidateScoringCounts counts)
    {
        this.rm = rm;
        this.counts = counts;
        this.capacity = capacity;
        session = new BatchSession(rm.Backbone, 0, capacity);
    }

    public int Rows => session.BatchSize;

    public void AddRows(IReadOnlyList<int[]> prompts)
    {
        using var scope = NewDisposeScope();
        session.AddRows(prompts, capacity);
    }

    public void KeepRows(int[] rows) => session.SelectRows(rows.Select(r => (long)r).ToArray());

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
