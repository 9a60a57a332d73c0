using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// log π(y|x) = Σ_t log π(y_t | x, y_&lt;t) over the RESPONSE tokens only (prompt tokens are context, not scored):
/// the quantity DPO compares between policy and reference. Sequences are right-padded into one forward.
/// </summary>
public static class DpoLogProbs
{
    /// <summary>Sums [N] of response-token log-probabilities of prompt[n] + response[n] (prompts non-empty).</summary>
    public static Tensor Sums(CausalLM model, IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses)
    {
        int n = prompts.Count;
        int width = Enumerable.Range(0, n).Max(i => prompts[i].Length + responses[i].Length);
        var ids = new long[n * width];
        var valid = new bool[n * width];
        var scored = new bool[n * (width - 1)]; // target position t+1 is a response token
        for (int i = 0; i < n; i++)
        {
            int p = prompts[i].Length, r = responses[i].Length;
            for (int t = 0; t < p + r; t++)
            {
                ids[i * width + t] = t < p ? prompts[i][t] : responses[i][t - p];
                valid[i * width + t] = true;
            }
            for (int t = p; t < p + r; t++) scored[i * (width - 1) + t - 1] = true;
        }
        using var scope = NewDisposeScope(); // the logits and gathers are intermediates (Models/TransformerBackbone.ForwardInScope says why)
        var input = tensor(ids, [n, width]);
        var logits = model.Logits(input, tensor(valid, [n, width]));             // [N, T, V]
        var predicting = logits[.., ..^1, ..];                                    // position t predicts token t+1
        var targets = input[.., 1..].unsqueeze(-1);
        // log softmax at the target = logit[target] − logsumexp(logits): no second [N, T, V] tensor.
        var logProbs = predicting.gather(-1, targets).squeeze(-1) - predicting.logsumexp(-1);
        var mask = tensor(scored, [n, width - 1]).to(logProbs.dtype);
        return scope.MoveToOuter((logProbs * mask).sum(1));
    }
}
