using Pargs.Models;

namespace Pargs.Engine;

/// <summary>
/// Automatic prefix caching for the local engine, as vLLM's automatic prefix caching and llama.cpp's
/// <c>cache_prompt</c> do it: the KV caches of rows that left a session are kept, keyed by the token ids they hold, and a
/// row that joins with a prompt extending a kept sequence starts from a copy of that cache and computes only the tokens
/// after it. What makes it pay: a client steering pargs serve token by token (a remote engine) sends each row's whole
/// prefix with every step, one token longer than the last — with the cache a step costs one token, not a prefill.
/// <para>
/// Exact: the kept keys/values are the ones the row's own forward wrote, positions count real tokens only, and a match
/// always leaves at least one token to compute (the last position's logits are not kept), so a cached step gives the
/// log-probabilities of a fresh prefill up to the order of float sums (tested ≤ 1e-5). Bounded: entries are compact
/// single-row caches, evicted least recently used first once their bytes pass <see cref="ByteBudget"/>. Matches are whole
/// kept sequences that are a prefix of the prompt (no partial reuse of a longer entry). Not thread-safe: the thread that
/// steps the sessions owns it; the counters may be read from any thread.
/// </para>
/// </summary>
public sealed class PrefixCache : IDisposable
{
    sealed class Entry(int[] ids, ulong hash, KvCache cache)
    {
        public int[] Ids { get; } = ids;
        public ulong Hash { get; } = hash;
        public KvCache Cache { get; } = cache;
        public long Bytes { get; } = cache.AllocatedBytes + ids.Length * sizeof(int);
    }

    readonly Dictionary<ulong, LinkedListNode<Entry>> byHash = new();
    readonly LinkedList<Entry> recent = new(); // most recently used first
    long bytes, hits, misses, reusedTokens, computedTokens, evictions;
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

    /// <summary>
    /// The longest kept sequence that is a proper prefix of <paramref name="prompt"/> (at least one token left to compute),
    /// marked as recently used: its cache (owned by this cache: read it, do not keep or dispose it) and its length; or
    /// (null, 0).
    /// </summary>
    public (KvCache? Cache, int Length) Find(int[] prompt)
    {
        int most = Math.Min(prompt.Length - 1, longest);
        if (most >= 1)
        {
            var prefixHashes = new ulong[most + 1];
            ulong h = Seed;
            for (int i = 0; i < most; i++) prefixHashes[i + 1] = h = Mix(h, prompt[i]);
            for (int length = most; length >= 1; length--)
            {
                if (!byHash.TryGetValue(prefixHashes[length], out var node)) continue;
                var ids = node.Value.Ids;
                if (ids.Length != length || !prompt.AsSpan(0, length).SequenceEqual(ids)) continue; // a hash collision
                recent.Remove(node);
                recent.AddFirst(node);
                Interlocked.Increment(ref hits);
                Interlocked.Add(ref reusedTokens, length);
                Interlocked.Add(ref computedTokens, prompt.Length - length);
                return (node.Value.Cache, length);
            }
        }
        Interlocked.Increment(ref misses);
        Interlocked.Add(ref computedTokens, prompt.Length);
        return (null, 0);
    }

    /// <summary>Keeps <paramref name="cache"/> (one compact row holding exactly <paramref name="ids"/>; owned from now on).</summary>
    public void Add(int[] ids, KvCache cache)
    {
        if (cache.BatchSize != 1 || cache.CommittedTokens[0] != ids.Length || ids.Length == 0)
        {
            cache.Dispose();
            throw new ArgumentException($"a prefix cache entry is one row holding its {ids.Length} ids");
        }
        ulong hash = Seed;
        foreach (int id in ids) hash = Mix(hash, id);
        var entry = new Entry(ids, hash, cache);
        if (entry.Bytes > ByteBudget) { cache.Dispose(); return; }
        if (byHash.TryGetValue(hash, out var old)) Remove(old); // the same sequence again (or a collision): the newest stands
        var node = recent.AddFirst(entry);
        byHash[hash] = node;
        Interlocked.Add(ref bytes, entry.Bytes);
        longest = Math.Max(longest, ids.Length);
        while (Bytes > ByteBudget && recent.Last is { } last && !ReferenceEquals(last, node))
        {
            Remove(last);
            Interlocked.Increment(ref evictions);
        }
    }

    void Remove(LinkedListNode<Entry> node)
    {
        recent.Remove(node);
        byHash.Remove(node.Value.Hash);
        Interlocked.Add(ref bytes, -node.Value.Bytes);
        node.Value.Cache.Dispose();
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
        foreach (var e in recent) e.Cache.Dispose();
        recent.Clear();
        byHash.Clear();
        Interlocked.Exchange(ref bytes, 0);
    }
}
