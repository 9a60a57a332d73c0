using Pargs.Decoding;
using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Tests.Decoding;

/// <summary>
/// Runs the fast <see cref="TokenwiseDecoder"/> and the same loop on the cache-free reference engine (<see cref="Engine.RecomputeEngine"/>) on the same
/// prompts and asserts the same tokens, the same candidates and the same scores (≤ 1e-4) at every step.
/// </summary>
internal static class OracleComparison
{
    public sealed record Outcome(TokenwiseDecoder Fast, IReadOnlyList<RowProgress> FastRows, IReadOnlyList<StepTrace> FastTrace);

    public static Outcome AssertFastMatchesNaive(CausalLM lm, IRewardModel rm, DecodingOptions options, IReadOnlyList<string> prompts)
    {
        var tok = lm.Tokenizer!;
        var encoded = prompts.Select(p => tok.Encode(p, addBos: true)).ToArray();
        var ctx = new DecodingContext(tok, lm.Config.EosTokenId, options.StopAtEos, Array.Empty<string>(), options.MaxNewTokens);
        var fastRows = encoded.Select((p, i) => new RowProgress(ctx, i, 0, p)).ToList();
        var naiveRows = encoded.Select((p, i) => new RowProgress(ctx, i, 0, p)).ToList();
        var fastTrace = new List<StepTrace>();
        var naiveTrace = new List<StepTrace>();
        var fast = new TokenwiseDecoder(lm, rm, options) { Trace = fastTrace.Add };
        fast.Run(encoded, fastRows);
        new TokenwiseDecoder(lm, rm, options with { Engine = DecodingEngine.Naive }) { Trace = naiveTrace.Add }.Run(encoded, naiveRows);

        for (int b = 0; b < prompts.Count; b++)
        {
            Assert.Equal(naiveRows[b].Tokens, fastRows[b].Tokens);
            var f = fastTrace.Where(t => t.Row == b).ToList();
            var n = naiveTrace.Where(t => t.Row == b).ToList();
            Assert.Equal(n.Count, f.Count);
            for (int s = 0; s < n.Count; s++)
            {
                Assert.Equal(n[s].CandidateIds, f[s].CandidateIds);
                for (int j = 0; j < n[s].Scores.Length; j++)
                    Assert.True(Math.Abs(n[s].Scores[j] - f[s].Scores[j]) <= 1e-4, $"row {b} step {s} candidate {j}: {n[s].Scores[j]} vs {f[s].Scores[j]}");
            }
        }
        return new Outcome(fast, fastRows, fastTrace);
    }
}
