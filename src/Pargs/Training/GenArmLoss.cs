using Pargs.Data;
using Pargs.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>GenARM's loss of a batch (with its graph) and its metrics.</summary>
public sealed record GenArmLossResult(Tensor Loss, double Accuracy, double Margin, double ChosenLogProb, double RejectedLogProb);

/// <summary>
/// The autoregressive reward model's loss (Xu et al., ICLR 2025): with r(x, y) = Σ_t log π_r(y_t | x, y&lt;t) over
/// the response tokens, loss = −mean log σ(β · (r(x, y_w) − r(x, y_l))) — DPO's loss without a reference model
/// (β = 0.05 in their code). Responses are the pair's real tokens plus one EOS when the model has one (as DPO
/// scores them, <see cref="DpoTrainer.Response"/>); the partial-RM EOS padding is dropped.
/// </summary>
public static class GenArmLoss
{
    public const double DefaultBeta = 0.05;

    public static GenArmLossResult Compute(CausalLM model, IReadOnlyList<TokenizedPair> pairs, double beta, int? eos)
    {
        int n = pairs.Count;
        foreach (var pair in pairs)
            if (pair.PromptIds.Length == 0)
                throw new PargsException("GenARM scores response tokens given the prompt: every prompt needs at least one token (BOS)");
        using var scope = NewDisposeScope(); // holds the intermediates; the loss leaves with its graph (Models/TransformerBackbone.ForwardInScope says why)
        var prompts = pairs.Select(p => p.PromptIds).ToList();
        var sums = DpoLogProbs.Sums(model, [.. prompts, .. prompts],
            [.. pairs.Select(p => DpoTrainer.Response(p.ChosenIds, p.ChosenLength, eos)), .. pairs.Select(p => DpoTrainer.Response(p.RejectedIds, p.RejectedLength, eos))]);
        var chosen = sums[..n];
        var rejected = sums[n..];
        var margin = (chosen - rejected).Times(beta);
        var loss = -nn.functional.logsigmoid(margin).mean();
        using (no_grad())
        {
            double Mean(Tensor x) => x.to(ScalarType.Float64).mean().item<double>();
            using var zero = 0.ToScalar(); // held across the comparison: an implicit Scalar can be freed mid-call (Models/HeldScalars)
            return new GenArmLossResult(scope.MoveToOuter(loss), Mean((margin > zero).to(ScalarType.Float64)), Mean(margin), Mean(chosen), Mean(rejected));
        }
    }
}
