using Pargs.Decoding;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// Draws PPO's responses: plain sampling from softmax(logits / T) over the whole vocabulary (TRL: top_k 0, top_p 1),
/// each row from its own seeded stream (<see cref="DecodingSteps.RowRandom"/>), so a row's response depends on the seed,
/// the update and its row only, never on its batch neighbours. A response ends after a stop id (kept as its last token)
/// or at the length limit. Each step recomputes the batch without a KV cache: the policy changes every update, and
/// PPO's model is small enough on CPU that the forward of a few dozen tokens is cheap next to training.
/// </summary>
public static class PpoSampler
{
    public static int[][] Sample(CausalLM policy, IReadOnlyList<int[]> prompts, int maxNewTokens, double temperature,
        IReadOnlyCollection<int> stopIds, IReadOnlyList<Random> rowRandom)
    {
        int n = prompts.Count;
        var responses = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
        var done = new bool[n];
        using var _ = no_grad();
        for (int step = 0; step < maxNewTokens; step++)
        {
            var active = Enumerable.Range(0, n).Where(b => !done[b]).ToArray();
            if (active.Length == 0) break;
            using var scope = NewDisposeScope();
            var sequences = active.Select(b => (int[])[.. prompts[b], .. responses[b]]).ToList();
            var (ids, valid) = PaddedBatch.RightPadded(sequences);
            var hidden = policy.Backbone.ForwardPadded(ids, valid);
            var last = tensor(sequences.Select(s => (long)s.Length - 1).ToArray());
            long width = hidden.shape[2];
            var lastHidden = hidden.gather(1, last.view(active.Length, 1, 1).expand(active.Length, 1, width)).squeeze(1); // [A, H]
            var logits = policy.LogitsFromHidden(lastHidden).to(ScalarType.Float32).contiguous().data<float>().ToArray();
            int vocab = logits.Length / active.Length;
            for (int a = 0; a < active.Length; a++)
            {
                int b = active[a];
                int token = DecodingSteps.SampleSoftmax(logits.AsSpan(a * vocab, vocab).ToArray(), temperature, rowRandom[b]);
                responses[b].Add(token);
                if (stopIds.Contains(token)) done[b] = true;
            }
        }
        return responses.Select(r => r.ToArray()).ToArray();
    }
}
