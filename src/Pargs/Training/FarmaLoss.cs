using Pargs.Models;
using Pargs.Data;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>FaRMA's two losses of a batch (each with its graph) and their metrics.</summary>
public sealed record FarmaLossResult(Tensor BradleyTerry, Tensor MaxConstraint, double Accuracy, double Margin, double MeanReward, int Constraints);

/// <summary>
/// FaRMA's training losses (Rashid et al., ICML 2025) for a reward model with a vocabulary head, where the reward
/// of a prefix is read from the head at the position before its last token: r(x, y1..t) := RM(x, y&lt;t)[y_t].
/// <list type="number">
/// <item>Bradley–Terry on whole responses: −mean log σ(r(x, y_w) − r(x, y_l) − margin), each reward read at the response's
/// last (EOS-padded) token, as the full-sequence reward model reads it.</item>
/// <item>The max constraint on chosen prefixes: mean over t of (r(x, y1..t) − max_v RM(x, y1..t)[v])², for the
/// chosen response's prefixes t = 1 … min(real length, L − 1) (the last real prefix is extended by its first EOS,
/// when padded). It makes a prefix's reward the value of its best extension, so the head scores partial
/// sequences as the reward of their optimal completion.</item>
/// </list>
/// WHY THE TARGET IS DETACHED (the default): the constraint is a Bellman-style consistency, and as in Q-learning the
/// target max_v RM(x, y1..t)[v] is treated as a constant (a semi-gradient). Values then flow backwards from
/// complete responses, whose rewards Bradley–Terry fixes, to earlier prefixes. With the gradient through the
/// target the loss is also minimised by dragging every extension's value down to its prefix's — collapsing the
/// head towards a constant, which the Bradley–Terry term alone has to fight. <c>detachTarget: false</c> keeps
/// that gradient (for comparison).
/// </summary>
public static class FarmaLoss
{
    public static FarmaLossResult Compute(VocabularyRewardModel model, IReadOnlyList<TokenizedPair> pairs, bool detachTarget = true)
    {
        foreach (var pair in pairs)
            if (pair.PromptIds.Length == 0)
                throw new PargsException("FaRMA reads a reward at the position before each token: every prompt needs at least one token (BOS)");
        using var scope = NewDisposeScope(); // holds the intermediates; the losses leave with their graphs (Models/TransformerBackbone.ForwardInScope says why)
        var batch = RewardPairBatch.Build(pairs, pair => [pair.ResponseLength]);
        var logits = model.Model.Logits(batch.Ids, batch.Valid);          // [2B, T, V]
        long vocab = logits.shape[2];
        var flat = logits.reshape(-1, vocab);                             // [2B·T, V]
        var ids = batch.Ids.reshape(-1);

        // The token at flat index i is scored by the head at i − 1 (same row: every prompt is non-empty).
        Tensor RewardOfTokenAt(Tensor index) => flat.index_select(0, index.Minus(1)).gather(1, ids.index_select(0, index).unsqueeze(1)).squeeze(1);

        var chosen = RewardOfTokenAt(batch.ChosenIndex);
        var rejected = RewardOfTokenAt(batch.RejectedIndex);
        var bt = BradleyTerryLoss.Compute(chosen, rejected, batch.Margins); // a pair's margin inside the sigmoid, as TRL (0 without one)

        int t = (int)batch.Ids.shape[1];
        var tokenIndex = new List<long>();
        for (int row = 0; row < pairs.Count; row++)
        {
            var pair = pairs[row];
            int last = Math.Min(pair.ChosenLength, pair.ResponseLength - 1);
            for (int i = 1; i <= last; i++) tokenIndex.Add((long)row * t + pair.PromptIds.Length + i - 1);
        }
        Tensor constraint;
        if (tokenIndex.Count == 0) constraint = flat.sum().Times(0.0); // no prefix to constrain: zero, with a graph
        else
        {
            var index = tensor(tokenIndex.ToArray());
            var prefixReward = RewardOfTokenAt(index);                     // r(x, y1..t)
            var best = flat.index_select(0, index).max(1).values;          // max_v RM(x, y1..t)[v]
            if (detachTarget) best = best.detach();
            constraint = (prefixReward - best).Pow(2).mean();
        }
        var (bradleyTerry, maxConstraint) = scope.MoveToOuter(bt.Loss, constraint);
        return new FarmaLossResult(bradleyTerry, maxConstraint, bt.Accuracy, bt.Margin, bt.MeanReward, tokenIndex.Count);
    }
}
