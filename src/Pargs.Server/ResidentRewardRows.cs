using Pargs.Models;

namespace Pargs.Server;

/// <summary>
/// The rows a served causal reward model scored in its last /v1/rewards passes, each kept in a one-row cache of its own
/// (its prefix's keys and values, and past them the k candidates' the pass wrote) until the same client row's next request
/// says which candidate was chosen: that candidate is then committed where it lies (<see cref="KvCache.CommitSibling"/>)
/// and the row's next sibling forward reads the cache in place (<see cref="BatchSession.SiblingsOfRows"/>). WHY: a remote
/// steering client sends each row's prefix with every step; stacking every row's cache into a batch (a copy of the whole
/// prefix per row and step), copying the candidates' slots out and keeping the batch in the prefix cache were a quarter of
/// the reward worker on stories260K (docs/benchmarks.md, "Remote steering, thirteenth pass") — what the local scorer does
/// in one process with one cache it keeps.
/// <para>
/// Keyed by the prefix's token ids (checked id by id, not just by hash). A row is taken out while a pass uses it, so two
/// requests of one pass never share a cache (the second one over the same prefix builds its own). Bounded by bytes and
/// count, least recently kept dropped first: a client that never comes back costs nothing lasting. On the reward worker only.
/// </para>
/// </summary>
sealed class ResidentRewardRows(long byteBudget, int maxRows = 4096) : IDisposable
{
    sealed record Row(ulong Hash, int[] Prefix, long[] Candidates, KvCache Cache, long Bytes);

    readonly Dictionary<ulong, LinkedListNode<Row>> byPrefix = new();
    readonly LinkedList<Row> oldestFirst = new();
    long bytes, committed, evicted, reused;

    /// <summary>Rows whose chosen candidate was committed where it lay (a sibling forward's slot kept, no forward, no copy of the prefix).</summary>
    public long CommittedInPlace => Interlocked.Read(ref committed);
    /// <summary>Rows dropped to stay within the budget.</summary>
    public long Evictions => Interlocked.Read(ref evicted);
    /// <summary>Prefix tokens of the rows taken: keys/values read where they were kept, not computed.</summary>
    public long ReusedTokens => Interlocked.Read(ref reused);
    public long Bytes => Interlocked.Read(ref bytes);
    public int Count => oldestFirst.Count;

    /// <summary>
    /// The cache of the kept row that <paramref name="prefix"/> continues, holding exactly <paramref name="prefix"/> now, owned
    /// by the caller (until <see cref="Keep"/>): a row kept over <paramref name="prefix"/>[..^1] whose last pass scored its last
    /// token as a candidate (committed in place), or one kept over <paramref name="prefix"/> itself (a request sent again);
    /// null when none is kept.
    /// </summary>
    public KvCache? Take(int[] prefix)
    {
        if (prefix.Length >= 2 && Find(prefix.AsSpan(0, prefix.Length - 1)) is { } shorter)
        {
            int slot = Array.IndexOf(shorter.Value.Candidates, (long)prefix[^1]);
            if (slot >= 0)
            {
                Remove(shorter);
                var cache = shorter.Value.Cache;
                try { cache.CommitSibling([slot]); }
                catch { cache.Dispose(); throw; } // out of the kept rows already: nobody else frees it
                Interlocked.Increment(ref committed);
                Interlocked.Add(ref reused, prefix.Length);
                return cache;
            }
        }
        if (Find(prefix) is { } same)
        {
            Remove(same);
            Interlocked.Add(ref reused, prefix.Length);
            return same.Value.Cache;
        }
        return null;
    }

    /// <summary>
    /// Keeps <paramref name="cache"/> (one row holding exactly <paramref name="prefix"/>, with the keys/values of
    /// <paramref name="candidates"/> written in the slots past it; owned from now on) for the row's next request.
    /// </summary>
    public void Keep(int[] prefix, long[] candidates, KvCache cache)
    {
        if (cache.BatchSize != 1 || cache.Length != prefix.Length || cache.Capacity < cache.Length + candidates.Length)
        {
            cache.Dispose();
            throw new ArgumentException($"a kept reward row is one row holding its {prefix.Length} ids and room for its {candidates.Length} candidates");
        }
        long size = cache.AllocatedBytes + prefix.Length * sizeof(int) + candidates.Length * sizeof(long);
        if (size > byteBudget) { cache.Dispose(); return; }
        ulong hash = KeptRewardSiblings.Hash(prefix);
        if (byPrefix.TryGetValue(hash, out var older)) Remove(older, dispose: true); // the newest scoring of a prefix wins
        byPrefix[hash] = oldestFirst.AddLast(new Row(hash, prefix, candidates, cache, size));
        Interlocked.Add(ref bytes, size);
        while ((Bytes > byteBudget || oldestFirst.Count > maxRows) && oldestFirst.First is { } oldest)
        {
            Remove(oldest, dispose: true);
            Interlocked.Increment(ref evicted);
        }
    }

    LinkedListNode<Row>? Find(ReadOnlySpan<int> prefix)
        => byPrefix.TryGetValue(KeptRewardSiblings.Hash(prefix), out var node) && prefix.SequenceEqual(node.Value.Prefix) ? node : null;

    void Remove(LinkedListNode<Row> node, bool dispose = false)
    {
        oldestFirst.Remove(node);
        if (byPrefix.TryGetValue(node.Value.Hash, out var held) && held == node) byPrefix.Remove(node.Value.Hash);
        Interlocked.Add(ref bytes, -node.Value.Bytes);
        if (dispose) node.Value.Cache.Dispose();
    }

    public void Dispose()
    {
        while (oldestFirst.First is { } node) Remove(node, dispose: true);
    }
}
