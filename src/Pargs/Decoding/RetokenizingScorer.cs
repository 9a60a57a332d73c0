using Pargs.Models;
using Pargs.Rewards;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// Candidate scoring when the LM and the reward model have DIFFERENT tokenizers: candidates are detokenized
/// and retokenized (<see cref="RewardRetokenizer"/> defines the RM's view of an LM sequence: complete UTF-8
/// characters only — a byte-level piece that starts a multi-byte character is held back until it completes —
/// RM BOS first, RM EOS after an LM EOS). Every reward equals a cache-free forward of the RM over
/// <c>RewardIds(prompt + sequence + candidate)</c> — what <see cref="NaiveGuidedDecoder"/> computes — and the
/// RM's KV cache is used wherever that is exact. Per row the scorer keeps the committed LM bytes, the RM ids
/// of their text (C), C's reward, and in one batched RM <see cref="BatchSession"/> the keys/values of P = C
/// minus its last <c>lag</c> tokens (default 1: a merge across the LM's token boundary usually rewrites only
/// the last RM token, which then costs nothing extra). For each candidate, T = the RM ids of committed text +
/// candidate bytes (+ RM EOS for the LM's EOS):
/// <code>
///   T == C                unchanged text (a held-back lead byte, a special token, EOS when the RM has none): C's reward
///   T == P + [t1 … tm]    scored over the cache in ONE packed forward for all rows: each candidate's tokens
///                         after P are a segment that sees P and its own earlier tokens (m = 1: a sibling)
///   otherwise             the tokenizations diverge before P's end: a cache-free full forward of T, batched
/// </code>
/// Commit, per row, C' = the RM ids of the new text (no RM EOS: an EOS that does not end the sequence is just
/// empty text). When every running row's P is a prefix of its C', P grows toward C' minus the lag: by copying
/// the keys/values of the pick's first segment token when every row caches exactly one (no forward), else by
/// appending the tokens (one small ragged forward). When some row's P is not (its earlier RM tokens changed),
/// the batch's RM cache is rebuilt by prefilling every running row's new P — the simplest correct choice, as
/// the cache cannot drop one row's slots. Cost: each candidate's full text is re-encoded every step
/// (O(length) per candidate): exactness first.
/// </summary>
public sealed class RetokenizingScorer : ICandidateScorer
{
    readonly RewardModel rm;
    readonly RewardRetokenizer bridge;
    readonly int capacity, lag;
    readonly CandidateScoringCounts counts;
    readonly List<Row> rows = new();
    int batch => rows.Count;
    BatchSession? session;
    bool packedRan; // the last Score wrote candidate keys/values after the cached prefix

    sealed class Row
    {
        public List<byte> Bytes = new();
        public bool Started;       // a token with bytes has been committed (the LM's dummy prefix no longer applies)
        public int[] RmIds = [];   // C: the RM ids of the committed text
        public int Cached;         // P = C[..Cached] is what the cache holds
        public float Reward;       // C's reward
        public bool Running;       // scored at the last Score (finished rows are left alone)
        public Candidate[] Candidates = [];
    }

    /// <param name="FirstSlot">Packed slot of the first token of the candidate's segment, else -1.</param>
    sealed record Candidate(byte[] Bytes, bool Started, int[] TextIds, int[] ScoredIds, int FirstSlot, float Reward);

    /// <param name="lag">
    /// How many RM tokens at the end of the committed text stay out of the cache (re-read with every candidate).
    /// A merge across the LM's token boundary usually changes only the last RM token ("▁h" "ap" → "▁hap"), so
    /// with a lag of 1 it stays on the cache instead of forcing a rebuild; 0 caches everything.
    /// </param>
    public RetokenizingScorer(RewardModel rm, RewardRetokenizer bridge, int capacity, CandidateScoringCounts counts, int lag = 1)
    {
        if (lag < 0) throw new ArgumentOutOfRangeException(nameof(lag));
        this.rm = rm;
        this.bridge = bridge;
        this.counts = counts;
        this.capacity = capacity;
        this.lag = lag;
    }

    public int Rows => rows.Count;

    int CachedLength(int[] ids) => Math.Min(ids.Length, Math.Max(1, ids.Length - lag));

    /// <summary>New rows start from their prompts; the RM cache is rebuilt to hold them (joining is rare next to steps).</summary>
    public void AddRows(IReadOnlyList<int[]> prompts)
    {
        var added = prompts.Select(p =>
        {
            var row = new Row { Running = true };
            row.Bytes = bridge.BytesOf(p, out row.Started);
            row.RmIds = bridge.Encode(RewardRetokenizer.CompleteText(row.Bytes.ToArray()));
            row.Cached = CachedLength(row.RmIds);
            return row;
        }).ToList();
        using (NewDisposeScope())
        {
            var rewards = FullRewards(added.Select(r => r.RmIds).ToList());
            for (int i = 0; i < added.Count; i++) added[i].Reward = rewards[i];
        }
        rows.AddRange(added);
        Rebuild();
    }

    public void KeepRows(int[] keep)
    {
        var kept = keep.Select(r => rows[r]).ToList();
        rows.Clear();
        rows.AddRange(kept);
        session?.SelectRows(keep.Select(r => (long)r).ToArray());
    }

    public float[][] Score(Tensor candidates, IReadOnlyList<bool> active)
    {
        int k = (int)candidates.shape[1];
        var ids = candidates.data<long>().ToArray();
        var rewards = new float[batch * k];
        var fullAt = new List<int>();
        var scored = new (byte[] Bytes, bool Started, int[] TextIds, int[] ScoredIds)[batch * k];
        var firstSlot = new int[batch * k];
        var lastSlot = new int[batch * k];
        var rowSlots = new List<(long Token, int Segment, long Position)>[batch];
        Array.Fill(firstSlot, -1);
        for (int b = 0; b < batch; b++)
        {
            var row = rows[b];
            rowSlots[b] = new();
            row.Running = active[b];
            if (!row.Running) continue;
            var cachedIds = row.RmIds.AsSpan(0, row.Cached);
            for (int j = 0; j < k; j++)
            {
                long id = ids[b * k + j];
                var bytes = row.Bytes.Concat(bridge.BytesOf(id, row.Started)).ToArray();
                var textIds = bridge.Encode(RewardRetokenizer.CompleteText(bytes));
                var scoredIds = bridge.IsLmEos(id) && bridge.RmEos is int eos ? bridge.CheckContext([.. textIds, eos]) : textIds;
                scored[b * k + j] = (bytes, row.Started || bridge.Starts(id), textIds, scoredIds);
                if (scoredIds.AsSpan().SequenceEqual(row.RmIds))
                {
                    rewards[b * k + j] = row.Reward;
                    counts.Unchanged++;
                }
                else if (scoredIds.Length > cachedIds.Length && scoredIds.AsSpan().StartsWith(cachedIds))
                {
                    firstSlot[b * k + j] = rowSlots[b].Count;
                    for (int t = cachedIds.Length; t < scoredIds.Length; t++) rowSlots[b].Add((scoredIds[t], j, t));
                    lastSlot[b * k + j] = rowSlots[b].Count - 1;
                    if (scoredIds.Length == cachedIds.Length + 1) counts.Siblings++; else counts.Extensions++;
                }
                else
                {
                    fullAt.Add(b * k + j);
                    counts.FullForwards++;
                }
            }
        }

        using (var scope = NewDisposeScope())
        {
            int width = rowSlots.Max(r => r.Count);
            packedRan = width > 0;
            if (packedRan)
            {
                var r = rm.ScoreFromHidden(PackedExtensions(rowSlots, width)).contiguous().data<float>().ToArray();
                for (int at = 0; at < batch * k; at++)
                    if (firstSlot[at] >= 0) rewards[at] = r[at / k * width + lastSlot[at]];
            }
            var full = FullRewards(fullAt.Select(at => scored[at].ScoredIds).ToList());
            for (int i = 0; i < fullAt.Count; i++) rewards[fullAt[i]] = full[i];
        }

        for (int b = 0; b < batch; b++)
            rows[b].Candidates = !rows[b].Running ? [] : Enumerable.Range(0, k).Select(j =>
            {
                var s = scored[b * k + j];
                return new Candidate(s.Bytes, s.Started, s.TextIds, s.ScoredIds, firstSlot[b * k + j], rewards[b * k + j]);
            }).ToArray();
        return Enumerable.Range(0, batch).Select(b => rewards.AsSpan(b * k, k).ToArray()).ToArray();
    }

    /// <summary>
    /// One forward over the RM cache for every candidate that extends its row's cached prefix: per row, the
    /// candidates' remaining tokens are packed one segment after another; each token sees the cached prefix,
    /// the earlier tokens of its own segment and itself (siblings generalised to several tokens — a tree of
    /// depth 1). Keys and values are written after the prefix but not committed. Returns hidden [B, width, hidden].
    /// </summary>
    Tensor PackedExtensions(List<(long Token, int Segment, long Position)>[] rowSlots, int width)
    {
        var tokens = new long[batch * width];
        var positions = new long[batch * width];
        var segment = new long[batch * width];
        Array.Fill(segment, -1L);
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < rowSlots[b].Count; i++)
                (tokens[b * width + i], segment[b * width + i], positions[b * width + i]) = rowSlots[b][i];
        var cache = session!.Cache;
        cache.Reserve(width);
        var prefix = cache.ValidPrefix;
        var seg = tensor(segment, batch, width);
        using var zero = 0.ToScalar(); // held across ge: an implicit Scalar can be freed mid-call (Models/HeldScalars)
        var sameSegment = seg.unsqueeze(2).eq(seg.unsqueeze(1)) & seg.unsqueeze(2).ge(zero);
        var newPart = (sameSegment & ones(width, width, dtype: ScalarType.Bool).tril()) | eye(width, dtype: ScalarType.Bool);
        var prefixPart = prefix.unsqueeze(1).expand(batch, width, prefix.shape[1]);
        var mask = cat(new[] { prefixPart, newPart }, 2).unsqueeze(1);
        return rm.Backbone.Forward(tensor(tokens, batch, width), tensor(positions, batch, width), mask, cache);
    }

    /// <summary>Cache-free rewards of whole RM sequences (right-padded batches).</summary>
    float[] FullRewards(IReadOnlyList<int[]> sequences) => SequenceRewardBatches.Score(rm, sequences);

    public void Commit(int[] chosen)
    {
        using var scope = NewDisposeScope();
        var running = Enumerable.Range(0, batch).Where(b => rows[b].Running).ToList();
        if (running.Count == 0) return;
        var picks = running.ToDictionary(b => b, b => rows[b].Candidates[chosen[b]]);
        var keptPrefix = picks.ToDictionary(p => p.Key, p => p.Value.TextIds.AsSpan().StartsWith(rows[p.Key].RmIds.AsSpan(0, rows[p.Key].Cached)));
        var oldCached = running.ToDictionary(b => b, b => rows[b].Cached);
        foreach (var (b, pick) in picks)
        {
            var row = rows[b];
            row.Bytes = pick.Bytes.ToList();
            row.Started = pick.Started;
            // C's reward: the pick's, unless an RM EOS was appended to score it (then the text, and C, did not change).
            if (pick.ScoredIds.Length == pick.TextIds.Length) row.Reward = pick.Reward;
            row.RmIds = pick.TextIds;
        }

        if (keptPrefix.Values.Any(kept => !kept))
        {
            foreach (var b in running) rows[b].Cached = CachedLength(rows[b].RmIds);
            Rebuild();
            counts.Rebuilds++;
            return;
        }

        // Every cached prefix is still a prefix: extend each toward C' minus the lag (never shrink it).
        foreach (var b in running) rows[b].Cached = Math.Max(oldCached[b], CachedLength(rows[b].RmIds));
        var added = running.ToDictionary(b => b, b => rows[b].Cached - oldCached[b]);
        if (packedRan && running.All(b => added[b] == 1 && picks[b].FirstSlot >= 0))
        {
            // The one token each row caches is the first of its pick's scored segment: copy those keys/values
            // (no forward). Finished rows take any slot; their cache is never read again.
            session!.CommitSibling(Enumerable.Range(0, batch).Select(b => picks.TryGetValue(b, out var p) ? (long)p.FirstSlot : 0L).ToArray());
            counts.SiblingCommits++;
            return;
        }
        int longest = added.Values.Max();
        if (longest == 0) return;
        var ids = new long[batch * longest];
        var valid = new bool[batch * longest];
        foreach (var b in running)
            for (int i = 0; i < added[b]; i++)
            {
                ids[b * longest + i] = rows[b].RmIds[oldCached[b] + i];
                valid[b * longest + i] = true;
            }
        session!.Append(ids, valid, longest);
        counts.AppendCommits++;
    }

    /// <summary>A fresh RM cache holding every running row's cached prefix (finished rows: one token as a placeholder).</summary>
    void Rebuild()
    {
        using var scope = NewDisposeScope();
        session?.Dispose();
        foreach (var row in rows)
            if (!row.Running) (row.RmIds, row.Cached) = (row.RmIds[..Math.Min(1, row.RmIds.Length)], Math.Min(1, row.RmIds.Length));
        int longest = rows.Max(r => r.Cached);
        session = new BatchSession(rm.Backbone, batch, Math.Max(capacity, longest + capacity / 2));
        session.Prefill(rows.Select(row => row.RmIds[..row.Cached]).ToList());
        packedRan = false;
    }

    public void Dispose() => session?.Dispose();
}
