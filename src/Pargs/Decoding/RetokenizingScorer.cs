using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// Candidate scoring when the LM and the reward model have DIFFERENT tokenizers: candidates are detokenized
/// and retokenized (<see cref="RewardRetokenizer"/> defines the RM's view of an LM sequence: complete UTF-8
/// characters only — a byte-level piece that starts a multi-byte character is held back until it completes —
/// RM BOS first, RM EOS after an LM EOS). Every reward equals a cache-free forward of the RM over
/// <c>RewardIds(prompt + sequence + candidate)</c> — what <see cref="NaiveGuidedDecoder"/> computes — and the
/// RM's KV cache is used wherever that is exact. Per row the scorer keeps the committed LM bytes, the RM ids
/// of their text (C) with their keys/values in one batched RM <see cref="BatchSession"/>, and C's reward.
/// For each candidate, T = the RM ids of committed text + candidate bytes (+ RM EOS for the LM's EOS):
/// <code>
///   T == C                unchanged text (a held-back lead byte, a special token, EOS when the RM has none): C's reward
///   T == C + [t1 … tm]    the prefix is kept: scored over the cache in ONE packed forward for all rows — each
///                         candidate's new tokens are a segment that sees the prefix and its own earlier tokens
///                         (m = 1 is the shared-vocabulary sibling)
///   otherwise             the tokenizations diverge (a merge across the boundary changed earlier RM tokens):
///                         a cache-free full forward of T, batched across such candidates
/// </code>
/// Commit, per row, C' = the RM ids of the new text (no RM EOS: an EOS that does not end the sequence is just
/// empty text). When every running row extends by one scored token, its keys/values are copied
/// (<see cref="BatchSession.CommitSibling"/>, no forward); else, when every C is a prefix of its C', the new
/// tokens are appended (one small ragged forward); else (some row's earlier RM tokens changed) the whole
/// batch's RM cache is rebuilt by prefilling every running row's C' — the simplest correct choice, as the
/// cache cannot drop one row's slots. Cost: each candidate's full text is re-encoded every step (O(length)
/// per candidate): exactness first.
/// </summary>
public sealed class RetokenizingScorer : ICandidateScorer
{
    readonly IRewardModel rm;
    readonly RewardRetokenizer bridge;
    readonly int batch, capacity;
    readonly CandidateScoringCounts counts;
    readonly Row[] rows;
    BatchSession? session;
    bool packedRan; // the last Score wrote candidate keys/values after the prefix

    sealed class Row
    {
        public List<byte> Bytes = new();
        public bool Started;       // a token with bytes has been committed (the LM's dummy prefix no longer applies)
        public int[] RmIds = [];   // C: the RM ids of the committed text, as held in the cache
        public float Reward;       // C's reward
        public bool Running;       // scored at the last Score (finished rows are left alone)
        public Candidate[] Candidates = [];
    }

    /// <param name="SiblingSlot">Packed slot of a one-new-token candidate (its keys/values can be committed), else -1.</param>
    sealed record Candidate(byte[] Bytes, bool Started, int[] TextIds, int[] ScoredIds, int SiblingSlot, float Reward);

    public RetokenizingScorer(IRewardModel rm, RewardRetokenizer bridge, int batchSize, int capacity, CandidateScoringCounts counts)
    {
        this.rm = rm;
        this.bridge = bridge;
        this.counts = counts;
        batch = batchSize;
        this.capacity = capacity;
        rows = Enumerable.Range(0, batchSize).Select(_ => new Row()).ToArray();
    }

    public void Prefill(IReadOnlyList<int[]> prompts)
    {
        for (int b = 0; b < batch; b++)
        {
            var row = rows[b];
            row.Bytes = bridge.BytesOf(prompts[b], out row.Started);
            row.RmIds = bridge.Encode(RewardRetokenizer.CompleteText(row.Bytes.ToArray()));
            row.Running = true;
        }
        Rebuild();
    }

    public Tensor Score(Tensor candidates, IReadOnlyList<bool> active)
    {
        int k = (int)candidates.shape[1];
        var ids = candidates.data<long>().ToArray();
        var rewards = new float[batch * k];
        var fullAt = new List<int>();
        var scored = new (byte[] Bytes, bool Started, int[] TextIds, int[] ScoredIds)[batch * k];
        var slot = new int[batch * k];   // where a candidate's last new token sits in the packed forward (-1: none)
        var rowSlots = new List<(long Token, int Segment, long Position)>[batch];
        Array.Fill(slot, -1);
        for (int b = 0; b < batch; b++)
        {
            var row = rows[b];
            rowSlots[b] = new();
            row.Running = active[b];
            if (!row.Running) continue;
            var c = row.RmIds;
            for (int j = 0; j < k; j++)
            {
                long id = ids[b * k + j];
                var bytes = row.Bytes.Concat(bridge.BytesOf(id, row.Started)).ToArray();
                var textIds = bridge.Encode(RewardRetokenizer.CompleteText(bytes));
                var scoredIds = bridge.IsLmEos(id) && bridge.RmEos is int eos ? [.. textIds, eos] : textIds;
                scored[b * k + j] = (bytes, row.Started || bridge.Starts(id), textIds, scoredIds);
                if (scoredIds.AsSpan().SequenceEqual(c))
                {
                    rewards[b * k + j] = row.Reward;
                    counts.Unchanged++;
                }
                else if (scoredIds.AsSpan().StartsWith(c))
                {
                    for (int t = c.Length; t < scoredIds.Length; t++) rowSlots[b].Add((scoredIds[t], j, t));
                    slot[b * k + j] = rowSlots[b].Count - 1;
                    if (scoredIds.Length == c.Length + 1) counts.Siblings++; else counts.Extensions++;
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
                    if (slot[at] >= 0) rewards[at] = r[at / k * width + slot[at]];
            }
            var full = FullRewards(fullAt.Select(at => scored[at].ScoredIds).ToList());
            for (int i = 0; i < fullAt.Count; i++) rewards[fullAt[i]] = full[i];
        }

        for (int b = 0; b < batch; b++)
            rows[b].Candidates = !rows[b].Running ? [] : Enumerable.Range(0, k).Select(j =>
            {
                var s = scored[b * k + j];
                bool sibling = slot[b * k + j] >= 0 && s.ScoredIds.Length == rows[b].RmIds.Length + 1;
                return new Candidate(s.Bytes, s.Started, s.TextIds, s.ScoredIds, sibling ? slot[b * k + j] : -1, rewards[b * k + j]);
            }).ToArray();
        return tensor(rewards, batch, k);
    }

    /// <summary>
    /// One forward over the RM cache for every candidate that extends its row's prefix: per row, the candidates'
    /// new tokens are packed one segment after another; each token sees the committed prefix, the earlier
    /// tokens of its own segment and itself (siblings generalised to several tokens — a tree of depth 1). Keys
    /// and values are written after the prefix but not committed. Returns hidden states [B, width, hidden].
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
        var sameSegment = seg.unsqueeze(2).eq(seg.unsqueeze(1)) & seg.unsqueeze(2).ge(0);
        var newPart = (sameSegment & ones(width, width, dtype: ScalarType.Bool).tril()) | eye(width, dtype: ScalarType.Bool);
        var prefixPart = prefix.unsqueeze(1).expand(batch, width, prefix.shape[1]);
        var mask = cat(new[] { prefixPart, newPart }, 2).unsqueeze(1);
        return rm.Backbone.Forward(tensor(tokens, batch, width), tensor(positions, batch, width), mask, cache);
    }

    /// <summary>Cache-free rewards of whole RM sequences (right-padded batches).</summary>
    float[] FullRewards(IReadOnlyList<int[]> sequences)
    {
        var all = new float[sequences.Count];
        const int chunk = 16;
        for (int start = 0; start < sequences.Count; start += chunk)
        {
            var part = sequences.Skip(start).Take(chunk).ToList();
            int longest = part.Max(s => s.Length);
            var ids = new long[part.Count * longest];
            var valid = new bool[part.Count * longest];
            for (int b = 0; b < part.Count; b++)
                for (int t = 0; t < part[b].Length; t++)
                {
                    ids[b * longest + t] = part[b][t];
                    valid[b * longest + t] = true;
                }
            var r = rm.SequenceRewards(tensor(ids, part.Count, longest), tensor(valid, part.Count, longest)).data<float>().ToArray();
            Array.Copy(r, 0, all, start, part.Count);
        }
        return all;
    }

    public void Commit(int[] chosen)
    {
        using var scope = NewDisposeScope();
        var running = Enumerable.Range(0, batch).Where(b => rows[b].Running).ToList();
        if (running.Count == 0) return;
        var picks = running.ToDictionary(b => b, b => rows[b].Candidates[chosen[b]]);
        foreach (var (b, pick) in picks)
        {
            rows[b].Bytes = pick.Bytes.ToList();
            rows[b].Started = pick.Started;
        }

        bool allSiblings = packedRan && picks.All(p => p.Value.SiblingSlot >= 0 && p.Value.ScoredIds.Length == p.Value.TextIds.Length);
        if (allSiblings)
        {
            // Every running row extends by the one token it was scored with: keep those keys/values. Finished
            // rows take any slot; their cache is never read again.
            session!.CommitSibling(tensor(Enumerable.Range(0, batch).Select(b => picks.TryGetValue(b, out var p) ? (long)p.SiblingSlot : 0L).ToArray()));
            foreach (var (b, pick) in picks) (rows[b].RmIds, rows[b].Reward) = (pick.TextIds, pick.Reward);
            counts.SiblingCommits++;
            return;
        }

        bool allExtend = picks.All(p => p.Value.TextIds.AsSpan().StartsWith(rows[p.Key].RmIds));
        if (!allExtend)
        {
            foreach (var (b, pick) in picks) rows[b].RmIds = pick.TextIds;
            Rebuild();
            counts.Rebuilds++;
            return;
        }

        int longest = picks.Max(p => p.Value.TextIds.Length - rows[p.Key].RmIds.Length);
        if (longest > 0)
        {
            var ids = new long[batch * longest];
            var valid = new bool[batch * longest];
            foreach (var (b, pick) in picks)
                for (int t = rows[b].RmIds.Length; t < pick.TextIds.Length; t++)
                {
                    int at = b * longest + t - rows[b].RmIds.Length;
                    ids[at] = pick.TextIds[t];
                    valid[at] = true;
                }
            var hidden = session!.Append(tensor(ids, batch, longest), tensor(valid, batch, longest));
            var r = rm.ScoreFromHidden(hidden).contiguous().data<float>().ToArray(); // [B, longest]
            foreach (var (b, pick) in picks)
            {
                int added = pick.TextIds.Length - rows[b].RmIds.Length;
                if (added > 0) rows[b].Reward = r[b * longest + added - 1];
            }
            counts.AppendCommits++;
        }
        foreach (var (b, pick) in picks) rows[b].RmIds = pick.TextIds;
    }

    /// <summary>A fresh RM cache holding every running row's committed ids (finished rows: one token as a placeholder).</summary>
    void Rebuild()
    {
        using var scope = NewDisposeScope();
        session?.Dispose();
        foreach (var row in rows)
            if (!row.Running) row.RmIds = row.RmIds[..Math.Min(1, row.RmIds.Length)];
        int longest = rows.Max(r => r.RmIds.Length);
        session = new BatchSession(rm.Backbone, batch, Math.Max(capacity, longest + capacity / 2));
        var r = rm.ScoreFromHidden(session.Prefill(rows.Select(row => row.RmIds).ToList())).contiguous().data<float>().ToArray();
        for (int b = 0; b < batch; b++) rows[b].Reward = r[b];
        packedRan = false;
    }

    public void Dispose() => session?.Dispose();
}
