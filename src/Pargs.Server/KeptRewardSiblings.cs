using Pargs.Models;

namespace Pargs.Server;

/// <summary>
/// The candidates a served causal reward model scored in its last /v1/rewards passes, kept until the same row's next
/// request says which one its client chose. A remote steering client sends, each step, a row's k candidate texts over
/// its prefix; the next step's prefix is that prefix plus the chosen candidate — whose keys/values the previous pass's
/// sibling forward already wrote. Kept here (<see cref="KvCache.SiblingSlots"/>), they extend the kept prefix by that
/// token with a copy (<see cref="KvCache.AppendSlots"/>) instead of a one-token forward per row: what the local cached
/// scorer does with <see cref="BatchSession.CommitSibling"/> within one process.
/// <para>
/// Keyed by the prefix's token ids (checked id by id, not just by hash). An entry is used once (the next prefix's keys and
/// values then live in the reward model's prefix cache); entries are bounded by count and bytes, oldest dropped first, so a
/// client that never comes back costs nothing lasting. On the worker thread only.
/// </para>
/// </summary>
// 256 rows between their request and the next: far more than one client keeps in flight (a pass holds at most 256 texts).
sealed class KeptRewardSiblings(long byteBudget, int maxEntries = 256) : IDisposable
{
    /// <summary>One pass's sibling slots, shared by its rows' entries (disposed with the last of them).</summary>
    sealed class Pass(KvCache slots)
    {
        public KvCache Slots { get; } = slots;
        public int Entries;
    }

    sealed record Entry(ulong Hash, int[] Prefix, long[] Candidates, Pass Pass, int Row);

    readonly Dictionary<ulong, LinkedListNode<Entry>> byPrefix = new();
    readonly LinkedList<Entry> oldestFirst = new();
    long bytes, appended;

    /// <summary>Tokens added to a prefix from kept sibling slots, i.e. one-token forwards not run.</summary>
    public long AppendedTokens => Interlocked.Read(ref appended);
    public int Entries => oldestFirst.Count;

    /// <summary>
    /// Keeps the sibling slots of one pass: row i of <paramref name="slots"/> holds the keys/values of the k candidates
    /// <paramref name="candidates"/>[i·k .. i·k+k) over <paramref name="prefixes"/>[i] (owned from now on).
    /// </summary>
    public void Keep(IReadOnlyList<int[]> prefixes, long[] candidates, int k, KvCache slots)
    {
        var pass = new Pass(slots);
        long passBytes = slots.AllocatedBytes;
        if (passBytes > byteBudget || prefixes.Count == 0) { slots.Dispose(); return; }
        bytes += passBytes;
        for (int i = 0; i < prefixes.Count; i++)
        {
            ulong hash = Hash(prefixes[i]);
            byPrefix.TryGetValue(hash, out var older);
            pass.Entries++; // before the older entry goes: it may be of this very pass (a prefix sent twice)
            byPrefix[hash] = oldestFirst.AddLast(new Entry(hash, prefixes[i], candidates[(i * k)..((i + 1) * k)], pass, i));
            if (older is not null) Remove(older); // the newest scoring of a prefix wins
        }
        while ((bytes > byteBudget || oldestFirst.Count > maxEntries) && oldestFirst.First is { } oldest) Remove(oldest);
    }

    /// <summary>
    /// Where the keys/values of <paramref name="extended"/>'s last token over the rest were kept (a candidate of the last
    /// pass over <paramref name="extended"/>[..^1]), or null. The slot stays kept until <see cref="Used"/>.
    /// </summary>
    public (KvCache Cache, int Row, int Slot, object Entry)? Find(int[] extended)
    {
        if (extended.Length < 2) return null;
        var prefix = extended.AsSpan(0, extended.Length - 1);
        if (!byPrefix.TryGetValue(Hash(prefix), out var node) || !prefix.SequenceEqual(node.Value.Prefix)) return null;
        int slot = Array.IndexOf(node.Value.Candidates, (long)extended[^1]);
        return slot < 0 ? null : (node.Value.Pass.Slots, node.Value.Row, slot, node);
    }

    /// <summary>Drops the entries <see cref="Find"/> returned once their slots were copied.</summary>
    public void Used(IEnumerable<object> entries)
    {
        foreach (var entry in entries)
        {
            var node = (LinkedListNode<Entry>)entry;
            if (node.List is not null) Remove(node);
            Interlocked.Increment(ref appended);
        }
    }

    void Remove(LinkedListNode<Entry> node)
    {
        oldestFirst.Remove(node);
        if (byPrefix.TryGetValue(node.Value.Hash, out var held) && held == node) byPrefix.Remove(node.Value.Hash);
        var pass = node.Value.Pass;
        if (--pass.Entries == 0)
        {
            bytes -= pass.Slots.AllocatedBytes;
            pass.Slots.Dispose();
        }
    }

    /// <summary>A prefix's key, for this and <see cref="ResidentRewardRows"/> (checked id by id on a match).</summary>
    internal static ulong Hash(ReadOnlySpan<int> ids)
    {
        ulong h = 14695981039346656037UL; // FNV-1a over the ids' 32-bit values
        foreach (int id in ids) h = (h ^ (uint)id) * 1099511628211UL;
        return h;
    }

    public void Dispose()
    {
        while (oldestFirst.First is { } node) Remove(node);
    }
}
