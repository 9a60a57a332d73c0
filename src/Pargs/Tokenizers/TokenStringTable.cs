namespace Pargs.Tokenizers;

/// <summary>
/// A vocabulary's token strings in one char array, found by id (offsets) and by text (an open-addressing table of ids
/// over those chars). WHY: a string object per token plus a Dictionary&lt;string, int&gt; entry per token cost ~70 bytes
/// of headers, references and hash bookkeeping beside a token's ~20 bytes of text — ~9 MiB for a 128k-token vocabulary,
/// held for the whole run and counted against the ≤ 1.1 × file-size resident budget of a stored-precision model
/// (docs/benchmarks.md, "Resident memory, fourth pass"). Lookups take spans, so a pair of pieces is looked up as their
/// concatenation without building the string.
/// </summary>
internal sealed class TokenStringTable
{
    readonly char[] _chars;
    readonly int[] _starts;  // token id's chars are _chars[_starts[id].._starts[id + 1]]
    readonly int[] _slots;   // open addressing, linear probing: id + 1, or 0 for an empty slot; length a power of two
    readonly int _mask;

    /// <summary>
    /// The table of <paramref name="tokens"/> in id order. When a text appears under several ids, lookup by text finds
    /// the first (a Dictionary filled with TryAdd in id order).
    /// </summary>
    public TokenStringTable(IReadOnlyList<string> tokens)
    {
        int count = tokens.Count;
        _starts = new int[count + 1];
        long total = 0;
        for (int id = 0; id < count; id++)
        {
            total += tokens[id].Length;
            if (total > Array.MaxLength) throw new PargsException($"tokenizer: the {count:N0} tokens' text exceeds {Array.MaxLength:N0} characters");
            _starts[id + 1] = (int)total;
        }
        _chars = new char[total];
        for (int id = 0; id < count; id++) tokens[id].CopyTo(0, _chars, _starts[id], tokens[id].Length);
        // At most half full, so a probe ends within a few slots.
        int size = 16;
        while (size < 2L * count) size *= 2;
        _slots = new int[size];
        _mask = size - 1;
        for (int id = 0; id < count; id++)
        {
            var text = this[id];
            int slot = Hash(text) & _mask;
            bool duplicate = false;
            for (; _slots[slot] != 0; slot = (slot + 1) & _mask)
                if (this[_slots[slot] - 1].SequenceEqual(text)) { duplicate = true; break; }
            if (!duplicate) _slots[slot] = id + 1;
        }
    }

    public int Count => _starts.Length - 1;

    /// <summary>Token <paramref name="id"/>'s text (a view; the caller checks the id).</summary>
    public ReadOnlySpan<char> this[int id] => _chars.AsSpan(_starts[id], _starts[id + 1] - _starts[id]);

    /// <summary>Token <paramref name="id"/>'s text as a string (allocated on each call).</summary>
    public string StringOf(int id) => new(this[id]);

    /// <summary>The id of the token whose text is <paramref name="text"/> (the first such id).</summary>
    public bool TryGetId(ReadOnlySpan<char> text, out int id)
    {
        for (int slot = Hash(text) & _mask; _slots[slot] != 0; slot = (slot + 1) & _mask)
        {
            if (this[_slots[slot] - 1].SequenceEqual(text))
            {
                id = _slots[slot] - 1;
                return true;
            }
        }
        id = -1;
        return false;
    }

    /// <summary>The id of the token whose text is <paramref name="left"/> followed by <paramref name="right"/>, without a string for the pair.</summary>
    public bool TryGetId(ReadOnlySpan<char> left, ReadOnlySpan<char> right, out int id)
    {
        int length = left.Length + right.Length;
        Span<char> joined = length <= 256 ? stackalloc char[length] : new char[length];
        left.CopyTo(joined);
        right.CopyTo(joined[left.Length..]);
        for (int slot = Hash(joined) & _mask; _slots[slot] != 0; slot = (slot + 1) & _mask)
        {
            if (this[_slots[slot] - 1].SequenceEqual(joined))
            {
                id = _slots[slot] - 1;
                return true;
            }
        }
        id = -1;
        return false;
    }

    /// <summary>
    /// The string hash of .NET (Marvin, seeded per process), as Dictionary&lt;string, …&gt; would use: a vocabulary read
    /// from an untrusted file cannot be chosen to collide.
    /// </summary>
    static int Hash(ReadOnlySpan<char> text) => string.GetHashCode(text);

    /// <summary>The token texts as a read-only list of strings, each built when read (for callers that want strings).</summary>
    public IReadOnlyList<string> AsStrings() => new StringView(this);

    sealed class StringView(TokenStringTable table) : IReadOnlyList<string>
    {
        public string this[int index] => (uint)index < (uint)table.Count ? table.StringOf(index) : throw new ArgumentOutOfRangeException(nameof(index));
        public int Count => table.Count;
        public IEnumerator<string> GetEnumerator()
        {
            for (int id = 0; id < table.Count; id++) yield return table.StringOf(id);
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
