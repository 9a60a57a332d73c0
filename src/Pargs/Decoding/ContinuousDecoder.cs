using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Models.Cpu;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// Continuous batching for one method: rows join between steps (<see cref="Join"/>) and leave as soon as they
/// finish or are cancelled, so a server's requests share one batched LM step and one batched reward pass
/// whatever moment they arrived. Each row has its own prompt, limits and stop strings
/// (<see cref="RowProgress"/>) and its own random stream, and every row's numbers are independent of its
/// neighbours' values (left padding, per-row positions), so a request gives the same text alone or among others.
/// What the row count can change is the last bit: one row takes the batch-1 matrix–vector kernels and several rows
/// the batched ones (CpuGemm, EightRowBatch), which sum in another order; a sampled token changes only if its draw
/// falls within that rounding of a boundary (docs/server.md).
/// Rows of different methods or options need different decoders (the rule is shared by the batch).
/// Not thread-safe: one thread steps it; others hand it work through their own queue.
/// </summary>
public sealed class ContinuousDecoder : IDisposable
{
    readonly ILanguageModelSession lm;
    readonly ICandidateScorer? scorer;
    readonly TokenRule rule;
    readonly List<Row> rows = new();
    readonly List<Row> joining = new();
    readonly StepPhaseTimes? times;
    NextTokens? next;
    int step;

    sealed record Row(int[] Prompt, RowProgress Progress, Random Random, Action<RowProgress>? OnToken, DistributionObserver? OnDistribution = null)
    {
        public bool Cancelled { get; set; }
    }

    /// <param name="capacity">The longest row expected (prompt + new tokens): the caches' first allocation.</param>
    /// <param name="times">Where to sum each step's phase times (profiling); null = no clock is read.</param>
    public ContinuousDecoder(LanguageModelEngine engine, IRewardModel? rm, ITokenwiseOptions method, int capacity, CandidateScoringCounts? counts = null,
                             StepPhaseTimes? times = null)
    {
        rule = method.CreateRule();
        lm = engine.OpenSession(capacity);
        var guide = method.Method.IsTokenwiseGuided ? method.Method.RewardModelFor(rm) : null;
        scorer = guide is null ? null : engine.OpenScorer(guide, rule.ScoredCandidates, capacity, counts ?? new CandidateScoringCounts());
        this.times = times;
        if (times is not null && scorer is not null) scorer = times.Timed(scorer);
    }

    /// <summary>
    /// Prompt tokens that may join in one step (at least one row joins whatever its length): a step that prefills joining
    /// prompts delays every running row's next token by that prefill, so a burst of arrivals joins over several steps
    /// instead of stalling the batch for all of them at once (vLLM bounds a step's prefill the same way). Rows join in
    /// arrival order; a row's output does not depend on when it joins. Unbounded by default.
    /// </summary>
    public int MaxJoinTokensPerStep { get; set; } = int.MaxValue;

    /// <summary>Rows running or waiting to join.</summary>
    public int Count => rows.Count + joining.Count;

    /// <summary>
    /// Queues a row; it joins the batch at the next <see cref="Step"/>. <paramref name="onToken"/> sees every accepted token;
    /// <paramref name="onDistribution"/> (a server reporting log-probabilities) sees each chosen token with the LM's raw
    /// next-token log-probabilities it was chosen from (log-softmax at temperature 1, before the method's processing).
    /// </summary>
    public void Join(int[] prompt, RowProgress progress, Random random, Action<RowProgress>? onToken = null, DistributionObserver? onDistribution = null)
        => joining.Add(new Row(prompt, progress, random, onToken, onDistribution));

    /// <summary>Stops a row at the next step (a client that went away); its progress stays as it was.</summary>
    public void Cancel(RowProgress progress)
    {
        foreach (var row in rows.Concat(joining))
            if (ReferenceEquals(row.Progress, progress)) row.Cancelled = true;
    }

    /// <summary>
    /// One step for every row: waiting rows join (their prompts are prefilled), the rule picks a token per row,
    /// finished and cancelled rows leave, the rest advance. Returns the rows that left in this step.
    /// </summary>
    public IReadOnlyList<RowProgress> Step()
    {
        using var _ = no_grad();
        var left = new List<RowProgress>();
        var start = times is null ? default : StepPhaseTimes.Now();
        joining.RemoveAll(r => { if (r.Cancelled) left.Add(r.Progress); return r.Cancelled; });
        RemoveRows(r => r.Cancelled, left);
        Timed(StepPhaseTimes.Phase.Leave, ref start);
        if (joining.Count > 0)
        {
            // The budget counts the tokens a join runs: the LM's prefix cache serves the rest (a remote client's step request
            // sends its whole prefix and runs one token; counted whole, 16 such rows of ~50 tokens joined over 3–4 steps). A
            // scorer prefills the whole prompt, so with one the whole prompt counts.
            int Cost(Row row) => scorer is null ? lm.TokensToRun(row.Prompt) : row.Prompt.Length;
            int joins = 1;
            for (long budget = Cost(joining[0]); joins < joining.Count && (budget += Cost(joining[joins])) <= MaxJoinTokensPerStep; joins++) { }
            var prompts = joining.Take(joins).Select(r => r.Prompt).ToList();
            next = lm.AddRows(prompts);
            Timed(StepPhaseTimes.Phase.JoinLm, ref start);
            scorer?.AddRows(prompts);
            if (times is not null) start = StepPhaseTimes.Now(); // the scorer timed itself
            rows.AddRange(joining.Take(joins));
            joining.RemoveRange(0, joins);
        }
        if (rows.Count == 0) return left;
        times?.CountStep(rows.Count);

        using var scope = NewDisposeScope();
        var tokens = rule.Choose(new TokenwiseStep
        {
            Next = next!, Scorer = scorer, RowRandom = rows.Select(r => r.Random).ToArray(),
            Active = rows.Select(_ => true).ToArray(), Index = step++,
        });
        Timed(StepPhaseTimes.Phase.Choose, ref start);
        if (rows.Any(r => r.OnDistribution is not null))
        {
            using var logProbs = next!.LogProbs.contiguous(); // [B, V]
            int vocab = (int)logProbs.shape[1];
            var all = TensorMemory.FloatSpan(logProbs); // rows sliced from the storage in place, lent to the observers (no copy)
            for (int b = 0; b < rows.Count; b++)
                rows[b].OnDistribution?.Invoke(tokens[b], all.Slice(b * vocab, vocab));
            Timed(StepPhaseTimes.Phase.LogProbs, ref start);
        }
        for (int b = 0; b < rows.Count; b++)
        {
            rows[b].Progress.Accept((int)tokens[b]);
            rows[b].OnToken?.Invoke(rows[b].Progress);
        }
        Timed(StepPhaseTimes.Phase.Accept, ref start);
        var kept = RemoveRows(r => r.Progress.Done, left);
        Timed(StepPhaseTimes.Phase.Leave, ref start);
        if (rows.Count > 0) next = lm.Append(kept.Select(b => tokens[b]).ToArray());
        Timed(StepPhaseTimes.Phase.LmStep, ref start);
        return left;
    }

    /// <summary>Adds the time since <paramref name="start"/> to <paramref name="phase"/> and restarts the clock (when timed).</summary>
    void Timed(StepPhaseTimes.Phase phase, ref StepPhaseTimes.Stamp start) => times?.Add(phase, ref start);

    /// <summary>
    /// Drops the rows that match from the batch (LM session and scorer alike); returns the kept rows' old indices, in their
    /// new order. A leaving row's place is taken by the last kept row (swap-remove), not by every row after it moving down:
    /// the caches then move one row per leave in place (<see cref="Models.KvCache.KeepRowsInPlace"/>) instead of the
    /// half of the batch behind it. Rows are independent, so their order in the batch changes none of their numbers.
    /// </summary>
    int[] RemoveRows(Func<Row, bool> leaves, List<RowProgress> left)
    {
        var leaving = rows.Select(leaves).ToArray();
        int keptCount = leaving.Count(l => !l);
        if (keptCount == rows.Count) return Enumerable.Range(0, rows.Count).ToArray();
        var kept = new int[keptCount];
        for (int b = 0, tail = rows.Count - 1; b < keptCount; b++)
        {
            if (!leaving[b]) { kept[b] = b; continue; }
            while (leaving[tail]) tail--;
            kept[b] = tail--; // a kept row at or past keptCount: there are as many of those as leaving rows before keptCount
        }
        left.AddRange(rows.Where((_, b) => leaving[b]).Select(r => r.Progress));
        var keptRows = kept.Select(b => rows[b]).ToList();
        rows.Clear();
        rows.AddRange(keptRows);
        next = lm.KeepRows(kept);
        scorer?.KeepRows(kept);
        return kept;
    }

    public void Dispose()
    {
        scorer?.Dispose();
        lm.Dispose();
    }
}

/// <summary>
/// Sees a row's chosen token with the LM's raw next-token log-probabilities it was chosen from. The span is lent for the call
/// only (the step's buffer, read in place: a copy per row and step was a vocabulary of floats — 128 KB at 32k): keep what
/// is needed from it, not the span.
/// </summary>
public delegate void DistributionObserver(long token, ReadOnlySpan<float> logProbs);
