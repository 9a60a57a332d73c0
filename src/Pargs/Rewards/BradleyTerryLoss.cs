using Pargs.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>The loss of one batch of comparisons and TRL's reward-training metrics for it.</summary>
public sealed record BradleyTerryResult(Tensor Loss, double Accuracy, double Margin, double MeanReward, int Comparisons);

/// <summary>
/// The Bradley–Terry loss of a reward model over N comparisons (chosen reward r_w, rejected reward r_l):
/// loss = −mean log σ(r_w − r_l − margin) + c · mean((r_w + r_l)²), as TRL's RewardTrainer computes it (margin
/// and <c>center_rewards_coefficient</c> c optional). For partial training each comparison is one prefix pair
/// (pair, i). The PARGS paper writes the loss as a sum over prefix pairs; we take the mean so the loss and a good
/// learning rate do not scale with response length or batch size — only the step size differs, not the optimum.
/// </summary>
public static class BradleyTerryLoss
{
    public static BradleyTerryResult Compute(Tensor chosen, Tensor rejected, Tensor? margins = null, double centerRewardsCoefficient = 0.0)
    {
        // A scope holds the chain's intermediates until the call returns (TorchSharp frees an unreferenced tensor's handle
        // in its finalizer, on any thread: Models/TransformerBackbone.ForwardInScope); the loss leaves it with its graph.
        using var scope = NewDisposeScope();
        var difference = chosen - rejected;
        var loss = -nn.functional.logsigmoid(margins is null ? difference : difference - margins.to(difference.dtype)).mean();
        if (centerRewardsCoefficient != 0.0)
            loss = loss.Plus(chosen.Plus(rejected).Pow(2).mean().Times(centerRewardsCoefficient));
        using (no_grad())
        {
            using var zero = 0.ToScalar(); // held across the comparison: an implicit Scalar can be freed mid-call (Models/HeldScalars)
            double accuracy = (difference > zero).to(ScalarType.Float64).mean().item<double>();
            double margin = difference.to(ScalarType.Float64).mean().item<double>();
            double meanReward = chosen.Plus(rejected).DividedBy(2).to(ScalarType.Float64).mean().item<double>();
            return new BradleyTerryResult(scope.MoveToOuter(loss), accuracy, margin, meanReward, (int)chosen.shape[0]);
        }
    }
}
