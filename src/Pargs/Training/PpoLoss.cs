using Pargs.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>The PPO loss of a micro-batch (with its graph) and its statistics (TRL's names, batch means).</summary>
public sealed record PpoLossResult(Tensor Loss, Tensor PolicyLoss, Tensor ValueLoss, Dictionary<string, double> Metrics);

/// <summary>
/// The clipped surrogate objective of PPO (Schulman et al. 2017) with a clipped value loss, over response positions
/// [B, R] (mask: real response tokens), as TRL computes it:
/// ratio = exp(log π − log π_old); policy loss = mean(max(−A·ratio, −A·clip(ratio, 1 − ε, 1 + ε)));
/// value loss = ½·mean(max((V − R)², (clip(V, V_old − ε_v, V_old + ε_v) − R)²)); loss = policy + vf_coef · value.
/// Advantages, returns and the rollout's log-probabilities and values are constants.
/// </summary>
public static class PpoLoss
{
    public static PpoLossResult Compute(Tensor logProbs, Tensor oldLogProbs, Tensor advantages, Tensor values, Tensor oldValues,
        Tensor returns, Tensor mask, double clipRange, double clipRangeValue, double valueCoef)
    {
        using var scope = NewDisposeScope(); // holds the intermediates; the losses leave with their graphs (Models/TransformerBackbone.ForwardInScope says why)
        var m = mask.to(logProbs.dtype);
        oldLogProbs = oldLogProbs.detach();
        advantages = advantages.detach();
        oldValues = oldValues.detach();
        returns = returns.detach();
        // Padding: the log-ratio is 0 there (ratio 1), so nothing undefined enters the graph; the mask then drops it.
        var logRatio = (logProbs - oldLogProbs) * m;
        var ratio = logRatio.exp();
        var policyLosses = -advantages * ratio;
        // Held across clamp: an implicit Scalar can be freed mid-call (Models/HeldScalars).
        using Scalar low = (1.0 - clipRange).ToScalar(), high = (1.0 + clipRange).ToScalar();
        var clippedPolicyLosses = -advantages * ratio.clamp(low, high);
        var policyLoss = PpoAdvantages.MaskedMean(maximum(policyLosses, clippedPolicyLosses), m);

        var clippedValues = minimum(maximum(values, oldValues.Minus(clipRangeValue)), oldValues.Plus(clipRangeValue));
        var valueLosses = (values - returns).Pow(2);
        var clippedValueLosses = (clippedValues - returns).Pow(2);
        var valueLoss = PpoAdvantages.MaskedMean(maximum(valueLosses, clippedValueLosses), m).Times(0.5);
        var loss = policyLoss.Plus(valueLoss.Times(valueCoef));

        double Mean(Tensor t) => PpoAdvantages.MaskedMean(t.detach(), m).to(ScalarType.Float64).item<double>();
        var metrics = new Dictionary<string, double>
        {
            ["loss/policy_avg"] = policyLoss.detach().to(ScalarType.Float64).item<double>(),
            ["loss/value_avg"] = valueLoss.detach().to(ScalarType.Float64).item<double>(),
            ["policy/clipfrac_avg"] = Mean((clippedPolicyLosses > policyLosses).to(m.dtype)),
            ["val/clipfrac_avg"] = Mean((clippedValueLosses > valueLosses).to(m.dtype)),
            // TRL's approxkl = ½·mean((log π − log π_old)²), here over response tokens only.
            ["policy/approxkl_avg"] = 0.5 * Mean(logRatio * logRatio),
            ["val/ratio"] = Mean(ratio),
        };
        scope.MoveToOuter(loss, policyLoss, valueLoss);
        return new PpoLossResult(loss, policyLoss, valueLoss, metrics);
    }
}
