using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// Prompts and responses as one right-padded batch, with the gathers that turn per-sequence outputs into per-response-token
/// ones [B, R] (R = the longest response): response token t of row b is sequence position p_b + t, predicted — and its
/// state valued — at position p_b + t − 1 (TRL's <c>logits[:, context_length − 1 : −1]</c>, here per row since prompts
/// are not left-padded).
/// </summary>
public sealed class PpoSequences
{
    public PpoSequences(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses)
    {
        int n = prompts.Count;
        int width = Enumerable.Range(0, n).Max(i => prompts[i].Length + responses[i].Length);
        int longest = responses.Max(r => r.Length);
        var ids = new long[n * width];
        var valid = new bool[n * width];
        var positions = new long[n * longest];
        var targets = new long[n * longest];
        var mask = new bool[n * longest];
        for (int b = 0; b < n; b++)
        {
            int p = prompts[b].Length, r = responses[b].Length;
            for (int t = 0; t < p + r; t++)
            {
                ids[b * width + t] = t < p ? prompts[b][t] : responses[b][t - p];
                valid[b * width + t] = true;
            }
            for (int t = 0; t < longest; t++)
            {
                // Padding reads the last prompt position (any real one would do): finite numbers the mask then drops.
                positions[b * longest + t] = t < r ? p - 1 + t : p - 1;
                targets[b * longest + t] = t < r ? responses[b][t] : 0;
                mask[b * longest + t] = t < r;
            }
        }
        Ids = tensor(ids, n, width);
        Valid = tensor(valid, n, width);
        Positions = tensor(positions, n, longest);
        Targets = tensor(targets, n, longest);
        Mask = tensor(mask, n, longest);
    }

    public Tensor Ids { get; }
    public Tensor Valid { get; }
    /// <summary>[B, R]: the sequence position whose output predicts (and values the state before) response token t.</summary>
    public Tensor Positions { get; }
    /// <summary>[B, R]: the response tokens (0 at padding).</summary>
    public Tensor Targets { get; }
    /// <summary>[B, R]: true at real response tokens.</summary>
    public Tensor Mask { get; }

    /// <summary>Logits [B, T, V] → the response tokens' logits [B, R, V].</summary>
    public Tensor ResponseLogits(Tensor logits)
        => logits.gather(1, Positions.unsqueeze(-1).expand(Positions.shape[0], Positions.shape[1], logits.shape[2]));

    /// <summary>Per-position values [B, T] → the value of the state before each response token [B, R].</summary>
    public Tensor ResponseValues(Tensor values) => values.gather(1, Positions);

    /// <summary>log softmax(logits / T) at the response tokens [B, R], from response logits [B, R, V].</summary>
    public Tensor LogProbs(Tensor responseLogits, double temperature)
    {
        var scaled = responseLogits.DividedBy(temperature);
        return scaled.gather(-1, Targets.unsqueeze(-1)).squeeze(-1) - scaled.logsumexp(-1);
    }

    /// <summary>Entropy of softmax(logits / T) at each response position [B, R] (metrics only).</summary>
    public static Tensor Entropy(Tensor responseLogits, double temperature)
    {
        var scaled = responseLogits.DividedBy(temperature);
        return scaled.logsumexp(-1) - (scaled.softmax(-1) * scaled).sum(-1);
    }
}
