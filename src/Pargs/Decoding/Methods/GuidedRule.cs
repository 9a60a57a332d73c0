namespace Pargs.Decoding.Methods;

/// <summary>
/// The tokenwise reward-guided rule of ARGS, PARGS and PARGS-G:
/// <code>
///   (log p_k, v_k) = TopK(log p, k)            candidates
///   r_k = scorer.Score(v_k)                    ONE batched RM pass over the RM's cached prefix
///   s_k = log p_k + w·r_k                      Combine
///   j = Sample(softmax(s_k / T)) | ArgMax(s_k) per row, with the row's own seeded stream
///   scorer.Commit(j)                           the RM prefix grows with the row, without another forward
/// </code>
/// The methods differ only in sampling vs argmax and in the reward model they are defined with.
/// </summary>
sealed class GuidedRule(int k, double w, bool sample, double temperature) : TokenRule
{
    public override int ScoredCandidates => k;

    public override long[] Choose(TokenwiseStep step)
    {
        var scorer = step.Scorer ?? throw new InvalidOperationException("a guided rule runs with a candidate scorer");
        int[]? chosen = null;
        var tokens = ChooseAmongTopK(step, k,
            scores => chosen = DecodingSteps.Choose(scores, sample, temperature, step.RowRandom),
            (ids, logProbs) =>
            {
                using var candidates = TorchSharp.torch.tensor(ids, logProbs.Length, k);
                return DecodingSteps.Combine(logProbs, scorer.Score(candidates, step.Active), w);
            });
        scorer.Commit(chosen!);
        return tokens;
    }
}
