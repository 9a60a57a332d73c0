using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// The rollout arithmetic of PPO over response positions [B, R] with a mask of real response tokens (a row's tokens
/// are its first positions; padding after). Everything here runs without gradients on the rollout's numbers.
/// </summary>
public static class PpoAdvantages
{
    /// <summary>
    /// Per-token KL(π ‖ π_ref) estimate from the sampled tokens' log-probabilities (Schulman's estimators, as TRL):
    /// k1 = log π − log π_ref; k3 = (e^{log π_ref − log π} − 1) − (log π_ref − log π). Zero at padding.
    /// </summary>
    public static Tensor Kl(Tensor logProbs, Tensor referenceLogProbs, Tensor mask, PpoKlEstimator estimator)
    {
        using var scope = NewDisposeScope(); // every public method here holds its intermediates: see Models/TransformerBackbone.ForwardInScope
        var logRatio = referenceLogProbs - logProbs;
        var kl = estimator == PpoKlEstimator.K1 ? -logRatio : logRatio.exp().Minus(1) - logRatio;
        return scope.MoveToOuter(kl * mask.to(kl.dtype));
    }

    /// <summary>
    /// Per-token rewards: −β·KL at every response token, plus the sequence's score on its last token
    /// (<paramref name="lengths"/>[b] − 1). TRL ≥ 0.12 adds the score one position after the last token when it
    /// fits (where the value of the EOS'd state is read); Pargs puts it on the last action, the textbook episodic
    /// form, so every reward belongs to a token the policy chose.
    /// </summary>
    public static Tensor Rewards(Tensor kl, Tensor scores, int[] lengths, double klCoef)
    {
        using var scope = NewDisposeScope();
        var rewards = kl.Times(-klCoef);
        var last = tensor(lengths.Select(l => (long)l - 1).ToArray()).unsqueeze(1);
        return scope.MoveToOuter(rewards.scatter_add(1, last, scores.to(rewards.dtype).unsqueeze(1)));
    }

    /// <summary>
    /// Generalized advantage estimation (Schulman et al. 2016), backwards over positions:
    /// δ_t = r_t + γ·V_{t+1} − V_t and A_t = δ_t + γλ·A_{t+1}, with V and A zero past a row's last token (the episode
    /// ends there). Returns are A + V, the value loss's targets (computed before advantages are whitened).
    /// </summary>
    public static (Tensor Advantages, Tensor Returns) Gae(Tensor rewards, Tensor values, Tensor mask, double gamma, double lambda)
    {
        using var scope = NewDisposeScope();
        var m = mask.to(values.dtype);
        var v = values * m;
        var r = rewards * m;
        long length = r.shape[1];
        var columns = new Tensor[length];
        Tensor next = zeros_like(v[.., 0]), nextValue = zeros_like(v[.., 0]);
        for (long t = length - 1; t >= 0; t--)
        {
            var delta = r[.., t].Plus(nextValue.Times(gamma)) - v[.., t];
            next = delta.Plus(next.Times(gamma * lambda)) * m[.., t];
            columns[t] = next;
            nextValue = v[.., t];
        }
        var advantages = stack(columns, 1);
        return scope.MoveToOuter(advantages, advantages.Plus(v) * m);
    }

    /// <summary>Mean over the masked entries.</summary>
    public static Tensor MaskedMean(Tensor values, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var m = mask.to(values.dtype);
        return scope.MoveToOuter((values * m).sum() / m.sum());
    }

    /// <summary>Unbiased (Bessel-corrected) variance over the masked entries, as TRL's masked_var.</summary>
    public static Tensor MaskedVariance(Tensor values, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var m = mask.to(values.dtype);
        double count = m.sum().to(ScalarType.Float64).item<double>();
        if (count < 2) throw new PargsException($"PPO: {count} response token(s) in the batch; whitening needs at least 2 (use more rows or longer responses)");
        var centered = values - MaskedMean(values, mask);
        return scope.MoveToOuter(MaskedMean(centered * centered, mask).Times(count / (count - 1)));
    }

    /// <summary>(x − mean) / √(var + 1e-8) over the masked entries (mean added back when not <paramref name="shiftMean"/>); zero at padding.</summary>
    public static Tensor Whiten(Tensor values, Tensor mask, bool shiftMean = true)
    {
        using var scope = NewDisposeScope();
        var mean = MaskedMean(values, mask);
        var whitened = (values - mean) * MaskedVariance(values, mask).Plus(1e-8).rsqrt();
        if (!shiftMean) whitened = whitened.Plus(mean);
        return scope.MoveToOuter(whitened * mask.to(values.dtype));
    }
}
