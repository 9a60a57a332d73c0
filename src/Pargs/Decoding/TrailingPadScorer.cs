using Pargs.Engine;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// Candidate scoring for a reward model that reads a sequence at its last non-pad token
/// (<see cref="RewardReadout.LastNonPadToken"/>, transformers' rule). A candidate that ends the reward model's
/// sequence with its pad token — the pad id itself over a shared vocabulary, or the LM's EOS when the reward
/// model appends its EOS and EOS is its pad (TRL's usual setup) — is read at the token before it: its reward is
/// the row's current reward, not the sibling forward's value at the pad position. Every other candidate passes
/// through. The row's current reward is the chosen candidate's at each commit; for a prompt it is computed once
/// when the rows join (the joining prompts in padded batches through <see cref="SequenceRewardBatches"/>, whose
/// <see cref="IRewardModel.SequenceRewards"/> applies the same rule), so the cached scorer equals the from-scratch oracle.
/// </summary>
public sealed class TrailingPadScorer : ICandidateScorer
{
    readonly ICandidateScorer inner;
    readonly RewardModel rm;
    readonly Func<long, bool> endsWithPad;
    readonly Func<int[], int[]> rewardIds;
    readonly List<float> current = new();
    long[] lastCandidates = [];
    float[][] lastRewards = [];
    int lastK;

    TrailingPadScorer(ICandidateScorer inner, RewardModel rm, Func<long, bool> endsWithPad, Func<int[], int[]> rewardIds)
    {
        this.inner = inner;
        this.rm = rm;
        this.endsWithPad = endsWithPad;
        this.rewardIds = rewardIds;
    }

    /// <summary><paramref name="scorer"/> itself unless <paramref name="rm"/> skips a pad token some LM candidate can produce.</summary>
    public static ICandidateScorer Wrap(ICandidateScorer scorer, LanguageModelInfo lm, RewardModel rm)
    {
        if (rm.SkippedPadId is not int pad) return scorer;
        if (RewardRetokenizer.For(lm, rm) is { } bridge)
        {
            // Through text, only the LM's EOS puts a special token (the RM's EOS) at the end of the RM's sequence.
            if (bridge.RmEos != pad) return scorer;
            return new TrailingPadScorer(scorer, rm, id => bridge.IsLmEos(id), prompt => bridge.RewardIds(prompt.ToList()));
        }
        return new TrailingPadScorer(scorer, rm, id => id == pad, prompt => prompt);
    }

    public int Rows => inner.Rows;

    public void AddRows(IReadOnlyList<int[]> prompts)
    {
        inner.AddRows(prompts);
        current.AddRange(SequenceRewardBatches.Score(rm, prompts.Select(rewardIds).ToList()));
    }

    public void KeepRows(int[] rows)
    {
        inner.KeepRows(rows);
        var kept = rows.Select(r => current[r]).ToList();
        current.Clear();
        current.AddRange(kept);
    }

    public float[][] Score(Tensor candidates, IReadOnlyList<bool> active)
    {
        var rewards = inner.Score(candidates, active);
        int k = (int)candidates.shape[1];
        var ids = candidates.data<long>().ToArray();
        for (int b = 0; b < rewards.Length; b++)
            for (int j = 0; j < k; j++)
                if (endsWithPad(ids[b * k + j])) rewards[b][j] = current[b];
        lastCandidates = ids;
        lastRewards = rewards;
        lastK = k;
        return rewards;
    }

    public void Commit(int[] chosen)
    {
        inner.Commit(chosen);
        for (int b = 0; b < chosen.Length; b++)
            if (!endsWithPad(lastCandidates[b * lastK + chosen[b]])) current[b] = lastRewards[b][chosen[b]];
    }

    public void Dispose() => inner.Dispose();
}
