using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// The fast path for every method that picks one token per step: greedy, top-k, top-p, ARGS, PARGS and
/// PARGS-G. Each step, per batch of rows:
/// <code>
///   log p = LogSoftmax(lm_head(h))                 base LM, one cached step per token
///   (log p_k, v_k) = TopK(log p, k)                  candidates (top-p: the nucleus)
///   r_k = scorer.Score(v_k)                          ONE batched RM pass: k one-token extensions over the RM's cached prefix
///   s_k = log p_k + w·r_k                            Combine
///   j = Sample(softmax(s_k / T)) | ArgMax(s_k)       per row, with the row's own seeded stream
///   append v_j: LM Step(v_j); scorer.Commit(j)       the RM prefix grows without another forward
/// </code>
/// With a shared vocabulary (<see cref="SharedVocabularyScorer"/>) the reward model is never re-run over the
/// sequence: its keys/values for the chosen candidate are the ones computed while scoring it. With different
/// tokenizers (<see cref="RetokenizingScorer"/>) candidates go through text, and fall back to a cache-free
/// forward only where the two tokenizations diverge.
/// </summary>
public sealed class TokenwiseDecoder
{
    readonly CausalLM lm;
    readonly IRewardModel? rm;
    readonly DecodingOptions options;

    public TokenwiseDecoder(CausalLM lm, IRewardModel? rm, DecodingOptions options)
    {
        this.lm = lm;
        this.rm = options.Method.IsTokenwiseGuided() ? options.Method.RewardModelFor(rm) : null; // best-of-n scores whole samples elsewhere
        this.options = options;
    }

    /// <summary>Which reward paths the runs of this decoder took (siblings, full forwards, commits).</summary>
    public CandidateScoringCounts Counts { get; } = new();

    /// <summary>Optional per-step trace (row, step, candidate ids, combined scores) — for tests and debugging.</summary>
    public Action<StepTrace>? Trace { get; init; }

    /// <summary>Runs one batch of rows to completion. <paramref name="rows"/>[b] starts from <paramref name="prompts"/>[b].</summary>
    public void Run(IReadOnlyList<int[]> prompts, IReadOnlyList<RowProgress> rows, Action<RowProgress>? onToken = null)
    {
        int batch = prompts.Count;
        int longest = prompts.Max(p => p.Length);
        var random = rows.Select(r => DecodingSteps.RowRandom(options.Seed, r.PromptIndex, r.SampleIndex)).ToArray();
        using var lmSession = new BatchSession(lm.Backbone, batch, longest + options.MaxNewTokens + 1);
        using var _ = no_grad();
        using var scorer = rm is null ? null
            : VocabularyBridge.ScorerFor(lm, rm, batch, longest + options.MaxNewTokens + options.K + 1, Counts);

        var hidden = lmSession.Prefill(prompts).MoveToOuterDisposeScope();
        scorer?.Prefill(prompts);
        for (int step = 0; step < options.MaxNewTokens && rows.Any(r => !r.Done); step++)
        {
            using var scope = NewDisposeScope();
            var logProbs = DecodingSteps.LogSoftmax(lm.LogitsFromHidden(hidden));
            long[] tokens;
            if (options.Method == DecodingMethod.TopP)
            {
                var (candLogp, candIds) = DecodingSteps.TopP(logProbs, options.TopP);
                var chosen = DecodingSteps.Choose(candLogp, sample: true, options.Temperature, random);
                tokens = candIds.Select((ids, b) => ids[chosen[b]]).ToArray();
            }
            else
            {
                int k = options.Method == DecodingMethod.Greedy ? 1 : options.K;
                var (candLogp, candIds) = DecodingSteps.TopK(logProbs, k);
                var rowsScores = DecodingSteps.ToRows(candLogp);
                if (scorer is not null)
                {
                    var rewards = scorer.Score(candIds, rows.Select(r => !r.Done).ToArray());
                    rowsScores = DecodingSteps.Combine(rowsScores, rewards, options.W);
                }
                var chosen = DecodingSteps.Choose(rowsScores, options.Method.Samples(), options.Temperature, random);
                var ids = candIds.data<long>().ToArray();
                tokens = chosen.Select((j, b) => ids[b * k + j]).ToArray();
                if (Trace is not null)
                    for (int b = 0; b < batch; b++)
                        Trace(new StepTrace(b, step, ids.AsSpan(b * k, k).ToArray(), rowsScores[b], chosen[b]));
                scorer?.Commit(chosen);
            }
            for (int b = 0; b < batch; b++)
            {
                bool wasDone = rows[b].Done;
                rows[b].Accept((int)tokens[b]);
                if (!wasDone) onToken?.Invoke(rows[b]);
            }
            if (rows.All(r => r.Done) || step == options.MaxNewTokens - 1) break; // no LM step whose logits nobody reads
            hidden.Dispose();
            hidden = lmSession.Step(tensor(tokens)).MoveToOuterDisposeScope();
        }
        hidden.Dispose();
    }
}

/// <summary>One row's candidates and combined scores at one step.</summary>
public sealed record StepTrace(int Row, int Step, long[] CandidateIds, float[] Scores, int ChosenColumn);
