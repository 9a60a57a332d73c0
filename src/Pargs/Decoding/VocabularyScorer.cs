using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// The cached vocabulary scorer: the reward model's causal LM over its own KV cache (<see cref="BatchSession"/>,
/// the family's CPU decode kernel where it has one) — a prefill per joining row, then one token per row and step,
/// and its head's row of V values read after each. LM and reward model share ids (checked by the model).
/// An appended token is stepped when the values are next needed (read, or rows join or leave): the values after a
/// run's last token are never read, so that step is never paid for — one reward-model step per generated token.
/// </summary>
public sealed class VocabularyScorer : VocabularyScorerBase
{
    readonly VocabularyRewardModel rm;
    readonly BatchSession session;
    readonly CandidateScoringCounts counts;
    readonly int capacity;
    Tensor? values; // [B, V], held across steps (outside any dispose scope)
    long[]? pending; // the last appended tokens, not yet stepped

    public VocabularyScorer(VocabularyRewardModel rm, int capacity, CandidateScoringCounts counts)
    {
        this.rm = rm;
        this.capacity = capacity;
        this.counts = counts;
        session = new BatchSession(rm.Model.Backbone, 0, capacity);
    }

    public override int Rows => session.BatchSize;
    public override Tensor Values
    {
        get
        {
            Step();
            return values ?? throw new InvalidOperationException("the scorer has no rows yet");
        }
    }

    public override void AddRows(IReadOnlyList<int[]> prompts)
    {
        Step();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var added = ValuesOf(session.AddRows(prompts, capacity));
        Keep(values is null ? added : cat([values, added]));
    }

    public override void KeepRows(int[] rows)
    {
        Step(); // every row's pending token first, as if it had been stepped at once: the batch's numbers stay the same
        using var scope = NewDisposeScope();
        var index = rows.Select(r => (long)r).ToArray();
        session.SelectRows(index);
        Keep(Values.index_select(0, tensor(index)));
    }

    public override void Append(long[] tokens)
    {
        Step();
        pending = (long[])tokens.Clone();
    }

    /// <summary>Steps the pending tokens (one cached token per row) and keeps the head's values after them.</summary>
    void Step()
    {
        if (pending is not { } tokens) return;
        pending = null;
        // The decoding loop already runs without gradients: entering no_grad again would be three more native calls a step.
        using var _ = is_grad_enabled() ? no_grad() : null;
        using var scope = NewDisposeScope();
        Keep(ValuesOf(session.Step(tensor(tokens))));
        counts.AppendCommits++;
    }

    Tensor ValuesOf(Tensor hidden) => rm.ValuesFromLogits(rm.Model.LogitsFromHidden(hidden));

    void Keep(Tensor next)
    {
        var old = values;
        values = next.DetachFromDisposeScope();
        if (!ReferenceEquals(old, values)) old?.Dispose();
    }

    public override void Dispose()
    {
        values?.Dispose();
        session.Dispose();
    }
}

/// <summary>
/// The reference vocabulary scorer (<c>--naive</c>): no cache; after every token each row's whole sequence goes
/// through the reward model alone and the last position's head is read. What <see cref="VocabularyScorer"/> must reproduce.
/// </summary>
public sealed class RecomputeVocabularyScorer : VocabularyScorerBase
{
    readonly VocabularyRewardModel rm;
    readonly CandidateScoringCounts counts;
    readonly List<List<long>> sequences = new();
    Tensor? values;

    public RecomputeVocabularyScorer(VocabularyRewardModel rm, CandidateScoringCounts counts)
    {
        this.rm = rm;
        this.counts = counts;
    }

    public override int Rows => sequences.Count;
    public override Tensor Values => values ?? throw new InvalidOperationException("the scorer has no rows yet");

    public override void AddRows(IReadOnlyList<int[]> prompts)
    {
        sequences.AddRange(prompts.Select(p => p.Select(i => (long)i).ToList()));
        Recompute();
    }

    public override void KeepRows(int[] rows)
    {
        var kept = rows.Select(r => sequences[r].ToList()).ToList();
        sequences.Clear();
        sequences.AddRange(kept);
        Recompute();
    }

    public override void Append(long[] tokens)
    {
        for (int b = 0; b < Rows; b++) sequences[b].Add(tokens[b]);
        Recompute();
    }

    void Recompute()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var rows = new List<Tensor>();
        foreach (var sequence in sequences)
        {
            if (sequence.Count > rm.Config.MaxPositions)
                throw new PargsException($"the sequence needs {sequence.Count} positions but the reward model's context is {rm.Config.MaxPositions} (max_position_embeddings); shorten the prompt or max_new_tokens");
            var ids = tensor(sequence.ToArray()).unsqueeze(0);
            rows.Add(rm.ValuesFromLogits(rm.Model.Logits(ids)[0, -1]));
            counts.FullForwards++;
        }
        var next = rows.Count == 0 ? empty(0, rm.Config.VocabSize) : stack(rows);
        values?.Dispose();
        values = next.DetachFromDisposeScope();
    }

    public override void Dispose() => values?.Dispose();
}
