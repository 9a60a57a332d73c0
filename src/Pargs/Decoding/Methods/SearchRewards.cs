using Pargs.Rewards;

namespace Pargs.Decoding.Methods;

/// <summary>
/// Rewards of prompt + continuation sequences for the searches (Best-of-N, blockwise CD, CARDS): one cache-free
/// reward-model forward per sequence, through text when the reward model has another tokenizer, EOS appended when
/// the row ended at one. A prefix that is not finished is scored as it stands — a partial-sequence reward model is
/// the prefix scorer these methods are defined with.
/// </summary>
static class SearchRewards
{
    public static double[] Of(SearchContext context, IRewardModel rm, IReadOnlyList<int[]> prompts, IReadOnlyList<RowProgress> rows)
    {
        var bridge = RewardRetokenizer.For(context.Engine.Info, rm); // null: LM ids go straight to the RM
        var sequences = rows.Select((r, i) =>
        {
            var lmIds = prompts[i].Concat(r.Tokens).Concat(r.EosToken is { } e ? new[] { e } : Array.Empty<int>()).ToArray();
            return bridge is null ? lmIds : bridge.RewardIds(lmIds);
        }).ToList();
        var rewards = SequenceRewardBatches.Score(rm, sequences).Select(r => (double)r).ToArray();
        foreach (double reward in rewards)
            if (!double.IsFinite(reward))
                throw new PargsException($"the reward model gave a sequence the reward {reward}: check its weights and config");
        if (context.Calls is { } calls) calls.RewardModel += rows.Count;
        return rewards;
    }

    /// <summary>A fresh row for <paramref name="promptIds"/> that has accepted <paramref name="tokens"/> (a row cannot be copied).</summary>
    public static RowProgress Replay(DecodingContext context, int promptIndex, int sampleIndex, int[] promptIds, IEnumerable<int> tokens)
    {
        var row = new RowProgress(context, promptIndex, sampleIndex, promptIds);
        foreach (int t in tokens) row.Accept(t);
        return row;
    }

    /// <summary>Host rows [B][V] of a session's log-probabilities.</summary>
    public static float[][] Rows(Engine.NextTokens next) => DecodingSteps.ToRows(next.LogProbs);
}
