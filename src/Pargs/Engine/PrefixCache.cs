using Pargs.Models;

namespace Pargs.Engine;

/// <summary>
/// Automatic prefix caching for the local engine, as vLLM's automatic prefix caching and llama.cpp's
/// <c>cache_prompt</c> do it: the KV caches of rows that left a session are kept, keyed by the token ids they hold, and a
/// row that joins with a prompt extending a kept sequence starts from a copy of that cache and computes only the tokens
/// after it. What makes it pay: a client steering pargs serve token by token (a remote engine) sends each row's whole
/// prefix with every step, one token longer than the last — with the cache a step costs one token, not a prefill.
/// <para>
/// A match is the longest common prefix of the prompt with any kept sequence (the first m slots of a compact entry are
/// exactly those m tokens' keys/values), so requests that share a system prompt or a story opening share its compute, as
/// with vLLM's block-level reuse. A kept sequence that a newer one extends is dropped (the newer one serves every prompt
/// the older one did), so a row stepped token by token keeps one entry, not one per step.
/// </para>
/// <para>
/// Exact: the kept keys/values are the ones the row's own forward wrote, positions count real tokens only, and a match
/// always leaves at least one token to compute (the last position's logits are not kept), so a cached step gives the
/// log-probabilities of a fresh prefill up to the order of float sums (tested ≤ 1e-5). Bounded: entries are compact
/// single-row caches, or rows of a session cache that all its rows left at once (<see cref="AddShared"/>: kept as it is,
/// its bytes counted once and freed with its last entry), evicted least recently used first once their bytes pass
/// <see cref="ByteBudget"/>. Not thread-safe:
/// the thread that steps the sessions owns it; the counters may be read from any thread.
/// </para>
/// </summary>
public sealed class PrefixCache : IDisposable
{
    sealed class Entry(int[] ids, ulong[] prefixHashes, KvCache cache, int row = 0, int firstSlot = 0, SharedRows? shared = null)
    {
        public int[] Ids { get; } = ids;
        /// <summary>[i] = hash of Ids[..(i + 1)]; the last is the whole sequence's.</summary>
        public ulong[] PrefixHashes { get; } = prefixHashes;
        public ulong Hash => PrefixHashes[^1];
        /// <summary>The keys/values: row <see cref="Row"/>'s slots from <see cref="FirstSlot"/> on (a compact entry: row 0 from 0).</summary>
        public KvCache Cache { get; } = cache;
        public int Row { get; } = row;
        public int FirstSlot { get; } = firstSlot;
        /// <summary>The session cache this entry is a row of (its bytes are counted once, with the cache), or null (compact, own).</summary>
        public SharedRows? Shared { get; } = shared;
        // The ids and one index slot per prefix are counted with the keys/values (a shared cache's bytes are counted once, by it).
        public long Bytes { get; } = (shared is null ? cache.AllocatedBytes : 0) + ids.Length * (sizeof(int) + 32L);
    }

    /// <summary>
    /// A session's whole KV cache, left by all its rows at once (a server step whose one-token requests all finished), kept
    /// as it is: each row is an entry that refers to it — no copy of any row — and it is freed when its last entry goes.
    /// WHY: a remote client's every step request leaves the server's batch and comes back a round trip later one token
    /// longer; copying each leaving row out (CompactRow) was a tenth of a step's CPU on a small model.
    /// </summary>
    public sealed class SharedRows(KvCache cache)
    {
        internal KvCache Cache { get; } = cache;
        /// <summary>Entries referring to it; its bytes count toward the budget while there is one.</summary>
        internal int References;
        /// <summary>The caller still adding its rows (until <see cref="Release"/>).</summary>
        internal bool Held = true;
        internal long Bytes { get; } = cache.AllocatedBytes;
        public int Rows => Cache.BatchSize;
    }

    /// <summary>A kept prefix of a prompt: <see cref="Length"/> tokens in row <see cref="Row"/> of <see cref="Cache"/> from slot
    /// <see cref="FirstSlot"/> on (owned by the prefix cache: read, do not keep or dispose); Cache is null when nothing matched.</summary>
    public readonly record struct Match(KvCache? Cache, int Row, int FirstSlot, int Length);

    readonly Dictionary<ulong, LinkedListNode<Entry>> byHash = new();   // whole kept sequences
    readonly Dictionary<ulong, LinkedListNode<Entry>> byPrefix = new(); // every prefix of a kept sequence → the newest entry holding it
    readonly LinkedList<Entry> recent = new(); // most recently used first
    long bytes, hits, misses, reusedTokens, computedTokens, evictions, sharedRows;
    int longest;

    /// <param name="byteBudget">Most bytes of keys/values kept (entries beyond it are evicted, least recently used first).</param>
    public PrefixCache(long byteBudget)
    {
        if (byteBudget < 0) throw new PargsException($"prefix cache: the byte budget must not be negative, got {byteBudget}");
        ByteBudget = byteBudget;
    }

    public long ByteBudget { get; }
    public long Bytes => Interlocked.Read(ref bytes);
    public int Entries => recent.Count;
    /// <summary>Joining rows that started from a kept prefix.</summary>
    public long Hits => Interlocked.Read(ref hits);
    public long Misses => Interlocked.Read(ref misses);
    /// <summary>Prompt tokens not computed thanks to the cache, and prompt tokens computed.</summary>
    public long ReusedTokens => Interlocked.Read(ref reusedTokens);
    public long ComputedTokens => Interlocked.Read(ref computedTokens);
    public long Evictions => Interlocked.Read(ref evictions);
    /// <summary>Rows kept as rows of the session cache they left with, not copied (<see cref="AddShared"/>).</summary>
    public long SharedRowsKept => Interlocked.Read(ref sharedRows);

    /// <summary>
    /// The kept sequence sharing the longest prefix with <paramref name="prompt"/>, at most all but its last token (at least
    /// one token is left to compute), marked as recently used: where its keys/values are (owned by this cache: read them, do
    /// not keep or dispose the cache) and the shared length; or a match with no cache.
    /// </summary>
    public Match Find(int[] prompt)
    {
        if (Longest(prompt) is (var node, var length))
        {
            recent.Remove(node);
            recent.AddFirst(node);
            Interlocked.Increment(ref hits);
            Interlocked.Add(ref reusedTokens, length);
            Interlocked.Add(ref computedTokens, prompt.Length - length);
            return new Match(node.Value.Cache, node.Value.Row, node.Value.FirstSlot, length);
        }
        Interlocked.Increment(ref misses);
        Interlocked.Add(ref computedTokens, prompt.Length);
        return default;
    }

    /// <summary>
    /// How many tokens of <paramref name="prompt"/> <see cref="Find"/> would find kept — without marking anything used or
    /// counting a hit: what a batch's join budget asks before it decides which rows join this step.
    /// </summary>
    public int KeptLength(int[] prompt) => Longest(prompt)?.Length ?? 0;

    (LinkedListNode<Entry> Node, int Length)? Longest(int[] prompt)
    {
        int most = Math.Min(prompt.Length - 1, longest);
        if (most < 1) return null;
        var prefixHashes = new ulong[most + 1];
        ulong h = Seed;
        for (int i = 0; i < most; i++) prefixHashes[i + 1] = h = Mix(h, prompt[i]);
        for (int length = most; length >= 1; length--)
        {
            if (!byPrefix.TryGetValue(prefixHashes[length], out var node)) continue;
            var ids = node.Value.Ids;
            if (ids.Length < length || !prompt.AsSpan(0, length).SequenceEqual(ids.AsSpan(0, length))) continue; // a hash collision
            return (node, length);
        }
        return null;
    }

    /// <summary>Keeps <paramref name="cache"/> (one compact row holding exactly <paramref name="ids"/>; owned from now on).</summary>
    public void Add(int[] ids, KvCache cache)
    {
        if (cache.BatchSize != 1 || cache.CommittedTokens[0] != ids.Length || ids.Length == 0)
        {
            cache.Dispose();
            throw new ArgumentException($"a prefix cache entry is one row holding its {ids.Length} ids");
        }
        if (!Keep(ids, cache, 0, 0, null)) cache.Dispose();
    }

    /// <summary>
    /// Keeps row <paramref name="row"/> of <paramref name="rows"/> (holding exactly <paramref name="ids"/> in its slots from
    /// <paramref name="firstSlot"/> to the cache's length, every one real) without copying it. The caller hands the cache over
    /// with <see cref="Share"/>, adds its rows, then calls <see cref="Release"/> once (evicts down to the budget, and frees the
    /// cache if no row was kept).
    /// </summary>
    public void AddShared(int[] ids, SharedRows rows, int row, int firstSlot)
    {
        var cache = rows.Cache;
        int count = cache.Length - firstSlot;
        if (row < 0 || row >= cache.BatchSize || firstSlot < 0 || count != ids.Length || ids.Length == 0 || cache.CommittedTokens[row] != count
            || Array.IndexOf(cache.ValidSlots, false, row * cache.Capacity + firstSlot, count) >= 0)
            throw new ArgumentException($"row {row} does not hold its {ids.Length} ids in slots {firstSlot}..{cache.Length - 1}");
        if (!rows.Held) throw new InvalidOperationException("rows of a released cache");
        if (rows.Bytes > ByteBudget) return;
        if (Keep(ids, cache, row, firstSlot, rows))
        {
            Interlocked.Increment(ref sharedRows);
            if (rows.References++ == 0) Interlocked.Add(ref bytes, rows.Bytes);
        }
    }

    /// <summary>
    /// Whether the rows of <paramref name="cache"/>, leaving all at once and holding <paramref name="tokens"/>[b] tokens each,
    /// can be kept as they are (<see cref="AddAll"/>): each row's tokens one run of real slots ending at the cache's length,
    /// more than half of the cache's slots the rows' own — a cache mostly padding or spare slots is copied out compactly
    /// instead, so that the byte budget keeps about what it kept — and the whole cache within the budget: one over it could
    /// not be kept at all, where its rows copied out compactly keep what fits. (Kept whole, a cache costs less than twice
    /// its rows' compact copies, by the half-real rule; that is the price of not copying them.)
    /// </summary>
    public bool Shareable(KvCache cache, IReadOnlyList<int> tokens)
    {
        if (cache.BatchSize == 0 || tokens.Count != cache.BatchSize || cache.HasHiddenStorageRows) return false; // hidden rows: more bytes than it shows
        if (cache.AllocatedBytes > ByteBudget) return false;
        long real = 0;
        for (int b = 0; b < cache.BatchSize; b++)
        {
            int first = cache.Length - tokens[b];
            if (tokens[b] == 0 || first < 0 || cache.CommittedTokens[b] != tokens[b]
                || Array.IndexOf(cache.ValidSlots, false, b * cache.Capacity + first, tokens[b]) >= 0) return false;
            real += tokens[b];
        }
        return 2 * real > (long)cache.Capacity * cache.BatchSize; // bytes per slot and row are the same for every slot
    }

    /// <summary>Keeps every row of <paramref name="cache"/> (owned from now on; <see cref="Shareable"/>) as it is: row b holds <paramref name="ids"/>[b].</summary>
    public void AddAll(KvCache cache, IReadOnlyList<int[]> ids)
    {
        var shared = Share(cache);
        try
        {
            for (int b = 0; b < cache.BatchSize; b++) AddShared(ids[b], shared, b, cache.Length - ids[b].Length);
        }
        finally { Release(shared); }
    }

    /// <summary>A session cache whose rows <see cref="AddShared"/> may keep (owned from now on: see <see cref="Release"/>).</summary>
    public static SharedRows Share(KvCache cache) => new(cache);

    /// <summary>The caller is done adding <paramref name="rows"/>' rows: freed now if none was kept, else with its last entry.</summary>
    public void Release(SharedRows rows)
    {
        // Evicted once all its rows are in (and their older copies superseded), not row by row.
        Evict();
        rows.Held = false;
        if (rows.References == 0) rows.Cache.Dispose();
    }

    /// <summary>Indexes a new entry unless a kept sequence already covers its ids; false = not kept (the caller frees it).</summary>
    bool Keep(int[] ids, KvCache cache, int row, int firstSlot, SharedRows? shared)
    {
        var prefixHashes = new ulong[ids.Length];
        ulong hash = Seed;
        for (int i = 0; i < ids.Length; i++) prefixHashes[i] = hash = Mix(hash, ids[i]);
        var entry = new Entry(ids, prefixHashes, cache, row, firstSlot, shared);
        if (entry.Bytes > ByteBudget) return false;
        if (byPrefix.TryGetValue(hash, out var covering) && covering.Value.Ids.AsSpan().StartsWith(ids))
        {
            // A kept sequence already holds all of these (the same one, or one that extends it): nothing new to keep.
            recent.Remove(covering);
            recent.AddFirst(covering);
            return false;
        }
        // A kept sequence this one extends is dropped: it serves every prompt that one served. Kept sequences are seldom
        // prefixes of one another (one a kept sequence covers is not kept, above; one that extends a kept sequence replaces
        // it, here), so the one looked for, from the longest down, is usually found at once — the row's sequence of its last
        // step — and the search stops there (a shorter one left by a lost index entry stays until evicted). Its index node
        // is reused in place. WHY: removing the older entry's index entries prefix by prefix and probing every prefix for
        // older entries, at every step of every row, was ~8 % of pargs serve's generation worker on stories260K
        // (docs/benchmarks.md, "Remote steering, thirteenth pass").
        LinkedListNode<Entry>? extended = null;
        for (int i = ids.Length - 1; i >= 0 && extended is null; i--)
            if (byHash.TryGetValue(prefixHashes[i], out var older) && older.Value.Ids.Length == i + 1 && ids.AsSpan().StartsWith(older.Value.Ids))
                extended = older;
        LinkedListNode<Entry> node;
        if (extended is not null)
        {
            // Its prefixes are not unindexed one by one: the node takes the new entry, and every prefix leads to it below.
            Remove(extended, unindexPrefixes: false);
            extended.Value = entry;
            recent.AddFirst(extended);
            node = extended;
        }
        else node = recent.AddFirst(entry);
        byHash[hash] = node;
        // Every prefix leads here, the extended sequence's too: one that another entry indexed since (a row over the same
        // prompt) would be lost with that entry, though this one still holds it.
        foreach (ulong h in prefixHashes) byPrefix[h] = node;
        Interlocked.Add(ref bytes, entry.Bytes);
        longest = Math.Max(longest, ids.Length);
        if (shared is null) Evict();
        return true;
    }

    /// <summary>Evicts least recently used entries (never the newest) until the bytes fit the budget.</summary>
    void Evict()
    {
        while (Bytes > ByteBudget && recent.Last is { } last && !ReferenceEquals(last, recent.First))
        {
            Remove(last);
            Interlocked.Increment(ref evictions);
        }
    }

    /// <param name="unindexPrefixes">False: the node's prefix index entries are left to the caller, who reuses the node.</param>
    void Remove(LinkedListNode<Entry> node, bool unindexPrefixes = true)
    {
        recent.Remove(node);
        if (byHash.TryGetValue(node.Value.Hash, out var whole) && whole == node) byHash.Remove(node.Value.Hash);
        // A prefix another entry also holds may lose its index here (the newest holder had it); lookups then find a
        // shorter match or none — never a wrong one, since every match is checked token by token.
        if (unindexPrefixes)
            foreach (ulong h in node.Value.PrefixHashes)
                if (byPrefix.TryGetValue(h, out var holder) && holder == node) byPrefix.Remove(h);
        Interlocked.Add(ref bytes, -node.Value.Bytes);
        if (node.Value.Shared is { } shared)
        {
            if (--shared.References == 0)
            {
                Interlocked.Add(ref bytes, -shared.Bytes);
                if (!shared.Held) shared.Cache.Dispose();
            }
        }
        else node.Value.Cache.Dispose();
        if (recent.Count == 0) longest = 0;
    }

    const ulong Seed = 1469598103934665603UL;

    /// <summary>A 64-bit hash of a sequence, extended one id at a time (so every prefix's hash comes in one pass).</summary>
    static ulong Mix(ulong hash, int id)
    {
        ulong x = hash ^ (uint)id;
        x *= 0x100000001B3UL;
        x ^= x >> 29;
        return x * 0xBF58476D1CE4E5B9UL;
    }

    public void Dispose()
    {
        foreach (var e in recent)
            if (e.Shared is null) e.Cache.Dispose();
            else if (--e.Shared.References == 0 && !e.Shared.Held) e.Cache.Dispose();
        recent.Clear();
        byHash.Clear();
        byPrefix.Clear();
        Interlocked.Exchange(ref bytes, 0);
    }
}
