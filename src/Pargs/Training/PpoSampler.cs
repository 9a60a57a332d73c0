using Pargs.Decoding;
using Pargs.Engine;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// Draws PPO's responses: plain sampling from softmax(logits / T) over the whole vocabulary (TRL: top_k 0, top_p 1),
/// each row from its own seeded stream (<see cref="DecodingSteps.RowRandom"/>), so a row's response depends on the seed,
/// the update and its row only, never on its batch neighbours. A response ends after a stop id (kept as its last token)
/// or at the length limit. Steps run on the cached engine the decoders use (KV caches and the family's CPU kernel,
/// which reads the module's weights in place, so it always samples from the policy as it is now): recomputing the
/// batch each step made sampling ~70% of an update's time on stories260K.
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
        using var session = LanguageModelEngine.Cached(policy).OpenSession(prompts.Max(p => p.Length) + maxNewTokens + 1);
        var next = session.AddRows(prompts);
        for (int step = 0; step < maxNewTokens; step++)
        {
            using var scope = NewDisposeScope();
            var logProbs = next.LogProbs.to(ScalarType.Float32).contiguous().data<float>().ToArray(); // log softmax(logits), [B, V]
            int vocab = logProbs.Length / n;
            var tokens = new long[n];
            for (int b = 0; b < n; b++)
            {
                if (done[b]) continue; // a finished row rides along (token 0), as in the decoders
                // softmax(log p / T) = softmax(logits / T): the tempered distribution.
                int token = DecodingSteps.SampleSoftmax(logProbs.AsSpan(b * vocab, vocab).ToArray(), temperature, rowRandom[b]);
                responses[b].Add(token);
                tokens[b] = token;
                if (stopIds.Contains(token)) done[b] = true;
            }
            if (done.All(d => d) || step == maxNewTokens - 1) break;
            next = session.Append(tokens);
        }
        return responses.Select(r => r.ToArray()).ToArray();
    }
}
