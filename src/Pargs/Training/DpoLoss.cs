using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>The DPO loss of a batch (with its graph) and TRL's DPO metrics (batch means).</summary>
public sealed record DpoLossResult(Tensor Loss, Dictionary<string, double> Metrics);

/// <summary>
/// Direct Preference Optimization (Rafailov et al. 2023): with implicit rewards r = β·(log π(y|x) − log π_ref(y|x)),
/// loss = −log σ(r_chosen − r_rejected), averaged over pairs. Inputs are per-pair SUMS of response-token
/// log-probabilities [B]; the reference's are constants.
/// </summary>
public static class DpoLoss
{
    public static DpoLossResult Compute(Tensor policyChosen, Tensor policyRejected, Tensor referenceChosen, Tensor referenceRejected, double beta)
    {
        using var scope = NewDisposeScope(); // holds the intermediates; the loss leaves with its graph (Models/TransformerBackbone.ForwardInScope says why)
        var chosenRewards = (policyChosen - referenceChosen.detach()).Times(beta);
        var rejectedRewards = (policyRejected - referenceRejected.detach()).Times(beta);
        var margins = chosenRewards - rejectedRewards;
        var loss = -nn.functional.logsigmoid(margins).mean();
        double Mean(Tensor t) => t.detach().to(ScalarType.Float64).mean().item<double>();
        return new DpoLossResult(scope.MoveToOuter(loss), new Dictionary<string, double>
        {
            ["rewards/chosen"] = Mean(chosenRewards),
            ["rewards/rejected"] = Mean(rejectedRewards),
            ["rewards/accuracies"] = Mean((chosenRewards > rejectedRewards).to(ScalarType.Float64)),
            ["rewards/margins"] = Mean(margins),
            ["logps/chosen"] = Mean(policyChosen),
            ["logps/rejected"] = Mean(policyRejected),
        });
    }
}
