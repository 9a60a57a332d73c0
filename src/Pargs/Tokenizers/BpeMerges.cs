namespace Pargs.Tokenizers;

/// <summary>
/// Rank-ordered BPE merges as Hugging Face's BPE model applies them: repeatedly merge the adjacent pair with
/// the lowest rank (leftmost among equal ranks) until no listed pair remains. WHY a heap: rescanning the word
/// for the best pair after every merge is quadratic (a 16,000-letter word took a minute); a priority queue of
/// candidate merges keyed by (rank, position), with stale entries skipped when popped, is O(n log n).
/// </summary>
internal sealed class BpeMerges
{
    // Merges by rank in three arrays, found by pair through an open-addressing table of ranks. WHY: a Dictionary entry
    // (hash, next, key, value: 24 bytes) per merge, plus a list beside it, plus both grown by doubling, held ~7 MiB for
    // Qwen's 151k merges and ~13 MiB for Llama 3's 280k for the whole run (docs/benchmarks.md, "Resident memory, fourth
    // pass"); these arrays hold 12 bytes per merge and the table 4 bytes per slot at most three quarters full.
    int[] _left, _right, _merged;
    int _count;
    int[] _slots = new int[16]; // rank + 1, or 0 for an empty slot; length a power of two
    int _mask = 15;

    /// <param name="capacity">Merges expected (a tokenizer.json's list length), so the arrays are not grown by doubling.</param>
    public BpeMerges(int capacity = 16)
    {
        capacity = Math.Max(capacity, 1);
        (_left, _right, _merged) = (new int[capacity], new int[capacity], new int[capacity]);
        Rehash(capacity);
    }

    public int Count => _count;
    public IReadOnlyList<(int Left, int Right)> InRankOrder => new RankView(this);

    /// <summary>Adds a merge; a pair already listed keeps its first (lower) rank.</summary>
    public void Add(int left, int right, int merged)
    {
        if (TryGet(left, right, out _, out _)) return;
        if (_count == _left.Length)
        {
            int grown = checked(_count * 2);
            Array.Resize(ref _left, grown);
            Array.Resize(ref _right, grown);
            Array.Resize(ref _merged, grown);
        }
        (_left[_count], _right[_count], _merged[_count]) = (left, right, merged);
        _count++;
        if (4L * _count > 3L * _slots.Length) Rehash(_count);
        else Insert(_count - 1);
    }

    /// <summary>The rank and merged id of the pair (left, right), if it is a merge.</summary>
    bool TryGet(int left, int right, out int rank, out int merged)
    {
        for (int slot = Hash(left, right) & _mask; _slots[slot] != 0; slot = (slot + 1) & _mask)
        {
            int r = _slots[slot] - 1;
            if (_left[r] == left && _right[r] == right)
            {
                (rank, merged) = (r, _merged[r]);
                return true;
            }
        }
        (rank, merged) = (-1, -1);
        return false;
    }

    /// <summary>A table at most three quarters full for <paramref name="merges"/> merges, filled with the first <see cref="_count"/>.</summary>
    void Rehash(int merges)
    {
        int size = 16;
        while (4L * merges > 3L * size) size *= 2;
        _slots = new int[size];
        _mask = size - 1;
        for (int rank = 0; rank < _count; rank++) Insert(rank);
    }

    void Insert(int rank)
    {
        int slot = Hash(_left[rank], _right[rank]) & _mask;
        while (_slots[slot] != 0) slot = (slot + 1) & _mask;
        _slots[slot] = rank + 1;
    }

    /// <summary>A multiplicative mix of the pair: long's own hash (the xor of its halves) put every pair (x, x) in one bucket.</summary>
    static int Hash(int left, int right) => (int)((((ulong)(uint)left << 32) | (uint)right) * 0x9E3779B97F4A7C15UL >> 32);

    sealed class RankView(BpeMerges merges) : IReadOnlyList<(int Left, int Right)>
    {
        public (int Left, int Right) this[int rank] => (uint)rank < (uint)merges._count ? (merges._left[rank], merges._right[rank]) : throw new ArgumentOutOfRangeException(nameof(rank));
        public int Count => merges._count;
        public IEnumerator<(int Left, int Right)> GetEnumerator()
        {
            for (int rank = 0; rank < merges._count; rank++) yield return (merges._left[rank], merges._right[rank]);
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    public void Apply(List<int> symbols)
    {
        int n = symbols.Count;
        if (n < 2) return;
        var ids = symbols.ToArray();
        var next = new int[n];
        var prev = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; alive[i] = true; }
        // Priority: rank first, then position (leftmost first among equal ranks).
        var queue = new PriorityQueue<(int Position, int Merged), long>(n);
        void Push(int position)
        {
            int right = next[position];
            if (right >= 0 && TryGet(ids[position], ids[right], out int rank, out int merged))
                queue.Enqueue((position, merged), ((long)rank << 32) | (uint)position);
        }
        for (int i = 0; i + 1 < n; i++) Push(i);
        while (queue.TryDequeue(out var top, out _))
        {
            int at = top.Position;
            if (!alive[at] || next[at] < 0) continue;
            int right = next[at];
            // A stale entry: the pair at this position changed since it was queued.
            if (!TryGet(ids[at], ids[right], out _, out int current) || current != top.Merged) continue;
            ids[at] = top.Merged;
            alive[right] = false;
            next[at] = next[right];
            if (next[at] >= 0) prev[next[at]] = at;
            if (prev[at] >= 0) Push(prev[at]);
            Push(at);
        }
        symbols.Clear();
        for (int i = 0; i >= 0; i = next[i]) symbols.Add(ids[i]);
    }
}
