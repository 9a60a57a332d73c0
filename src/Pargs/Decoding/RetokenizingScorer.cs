using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// Candidate scoring when the LM and the reward model have DIFFERENT tokenizers: candidates are detokenized
/// and retokenized (<see cref="RewardRetokenizer"/> defines the RM's view of an LM sequence: complete UTF-8
/// characters only, RM BOS first, RM EOS after an LM EOS). Every reward equals a cache-free forward of the RM
/// over <c>RewardIds(prompt + sequence + candidate)</c> — what <see cref="NaiveGuidedDecoder"/> computes — and
/// the cache is used wherever that is exact. Per row the scorer keeps the committed LM bytes, the RM ids of
/// their text (C) with their keys/values in one batched RM <see cref="BatchSession"/>, and C's reward.
/// For each candidate, T = the RM ids of committed text + candidate bytes:
/// <code>
///   T == C               unchanged text (a held-back lead byte, a special token, EOS without an RM EOS): C's reward
///   T == C + [t]         ONE new RM token: scored as a sibling over the cached prefix (one batched pass for all rows)
///   anything else        the tokenizations diverge (a merge across the boundary, several new tokens, earlier
///                        tokens changed): a cache-free full forward of T (batched across such candidates)
/// </code>
/// Commit, per row, the new committed ids C' = RM ids of the new text (no RM EOS — an EOS that does not end
/// the sequence is just empty text): when every running row extends by its scored sibling, the siblings'
/// keys/values are copied (no forward); else, when every C is a prefix of its C', the new tokens are appended
/// (one ragged forward); else (some row's earlier RM tokens changed) the whole batch's RM cache is rebuilt by
/// prefilling every running row's C' — the simplest correct choice, as the cache cannot drop one row's slots.
/// Cost: every candidate's text is re-encoded in full each step (O(length) per candidate; exactness over speed).
/// </summary>
public sealed class RetokenizingScorer : ICandidateScorer
{
    readonly IRewardModel rm;
    readonly RewardRetokenizer bridge;
    readonly int batch, capacity;
    readonly CandidateScoringCounts counts;
    readonly Row[] rows;
    BatchSession? session;
    bool siblingsRan;

    sealed class Row
    {
        public List<byte> Bytes = new();
        public bool Started;       // a token with bytes has been committed (the LM's dummy prefix no longer applies)
        public int[] RmIds = [];   // C: the RM ids of the committed text, as held in the cache
        public float Reward;       // C's reward
        public bool Running;       // scored at the last Score (finished rows are left alone)
        public Candidate[] Candidates = [];
    }

    sealed record Candidate(byte[] Bytes, bool Started, int[] TextIds, int[] ScoredIds, bool Sibling, float Reward);

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
        var siblingIds = new long[batch * k];
        var siblingAt = new List<int>();
        var fullAt = new List<int>();
        var scored = new (byte[] Bytes, bool Started, int[] TextIds, int[] ScoredIds)[batch * k];
        for (int b = 0; b < batch; b++)
        {
            var row = rows[b];
            row.Running = active[b];
            if (!row.Running) continue;
            for (int j = 0; j < k; j++)
            {
                long id = ids[b * k + j];
                var added = bridge.BytesOf(id, row.Started);
                var bytes = row.Bytes.Concat(added).ToArray();
                var textIds = bridge.Encode(RewardRetokenizer.CompleteText(bytes));
                var scoredIds = bridge.IsLmEos(id) && bridge.RmEos is int eos ? [.. textIds, eos] : textIds;
                scored[b * k + j] = (bytes, row.Started || bridge.Starts(id), textIds, scoredIds);
                var c = row.RmIds;
                if (scoredIds.AsSpan().SequenceEqual(c))
                {
                    rewards[b * k + j] = row.Reward;
                    counts.Unchanged++;
                }
                else if (scoredIds.Length == c.Length + 1 && scoredIds.AsSpan(0, c.Length).SequenceEqual(c))
                {
                    siblingIds[b * k + j] = scoredIds[^1];
                    siblingAt.Add(b * k + j);
                    counts.Siblings++;
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
            siblingsRan = siblingAt.Count > 0;
            if (siblingsRan)
            {
                var r = rm.ScoreFromHidden(session!.Siblings(tensor(siblingIds, batch, k))).contiguous().data<float>().ToArray();
                foreach (var at in siblingAt) rewards[at] = r[at];
            }
            var full = FullRewards(fullAt.Select(at => scored[at].ScoredIds).ToList());
            for (int i = 0; i < fullAt.Count; i++) rewards[fullAt[i]] = full[i];
        }

        var sibling = new HashSet<int>(siblingAt);
        for (int b = 0; b < batch; b++)
            rows[b].Candidates = !rows[b].Running ? [] : Enumerable.Range(0, k).Select(j =>
            {
                var s = scored[b * k + j];
                return new Candidate(s.Bytes, s.Started, s.TextIds, s.ScoredIds, sibling.Contains(b * k + j), rewards[b * k + j]);
            }).ToArray();
        return tensor(rewards, batch, k);
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

        bool allSiblings = siblingsRan && picks.All(p => p.Value.Sibling && p.Value.ScoredIds.Length == p.Value.TextIds.Length);
        if (allSiblings)
        {
            // Every running row extends by the one token it was scored with: keep those keys/values. Finished
            // rows take any column; their cache is never read again.
            session!.CommitSibling(tensor(Enumerable.Range(0, batch).Select(b => picks.ContainsKey(b) ? (long)chosen[b] : 0L).ToArray()));
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
        siblingsRan = false;
    }

    public void Dispose() => session?.Dispose();
}
