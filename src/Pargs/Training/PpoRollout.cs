using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// One rollout batch of PPO, per response token [B, R] but the scores [B] (TRL's names): the policy's and the reference's
/// log-probabilities of the sampled tokens, the value head's values, the scores, the KL and total rewards, and the GAE
/// advantages (whitened) and returns. Tensors live in the caller's dispose scope.
/// </summary>
public sealed record PpoRollout(
    IReadOnlyList<int[]> Prompts, IReadOnlyList<int[]> Responses, PpoSequences Sequences,
    Tensor LogProbs, Tensor ReferenceLogProbs, Tensor Values, Tensor Scores, Tensor Kl, Tensor NonScoreRewards,
    Tensor Rewards, Tensor Advantages, Tensor Returns)
{
    public int Count => Prompts.Count;
}
