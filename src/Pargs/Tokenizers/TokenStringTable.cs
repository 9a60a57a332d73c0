using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Pargs.Tokenizers;

/// <summary>
/// A vocabulary's token strings as UTF-8 in one byte array, found by id (offsets) and by text (an open-addressing table
/// of ids over those bytes). WHY: a string object per token plus a Dictionary&lt;string, int&gt; entry per token cost ~70
/// bytes of headers, references and hash bookkeeping beside a token's ~10 bytes of text — ~9 MiB for a 128k-token
/// vocabulary, held for the whole run and counted against the ≤ 1.1 × file-size resident budget of a stored-precision
/// model (docs/benchmarks.md, "Resident memory, fourth pass"). UTF-8 is how GGUF and tokenizer.json store the tokens
/// and half the size of .NET's UTF-16 for the ASCII and "▁" pieces that make up most vocabularies. Lookups take spans,
/// so a pair of tokens is looked up as their concatenation without building a string.
/// </summary>
internal sealed class TokenStringTable
{
    readonly byte[] _utf8;
    readonly int[] _starts;  // token id's bytes are _utf8[_starts[id].._starts[id + 1]]
    readonly int[] _slots;   // open addressing, linear probing: id + 1, or 0 for an empty slot; length a power of two
    readonly int _mask;

    /// <summary>
    /// The table of <paramref name="tokens"/> in id order. When a text appears under several ids, lookup by text finds
    /// the first (as a Dictionary filled with TryAdd in id order). A token that is not valid UTF-16 (a lone surrogate,
    /// which no GGUF, tokenizer.json or llama2.c vocabulary can hold) is refused, since UTF-8 cannot spell it.
    /// </summary>
    public TokenStringTable(IReadOnlyList<string> tokens, string source = "tokenizer")
    {
        int count = tokens.Count;
        _starts = new int[count + 1];
        long total = 0;
        for (int id = 0; id < count; id++)
        {
            total += Encoding.UTF8.GetByteCount(tokens[id]);
            if (total > Array.MaxLength) throw new PargsException($"{source}: the {count:N0} tokens' text exceeds {Array.MaxLength:N0} bytes");
            _starts[id + 1] = (int)total;
        }
        _utf8 = new byte[total];
        for (int id = 0; id < count; id++)
        {
            if (Utf8.FromUtf16(tokens[id], _utf8.AsSpan(_starts[id], _starts[id + 1] - _starts[id]), out _, out _, replaceInvalidSequences: false) != OperationStatus.Done)
                throw new PargsException($"{source}: token {id} is not valid Unicode text (a lone surrogate)");
        }
        // At most half full, so a probe ends within a few slots.
        int size = 16;
        while (size < 2L * count) size *= 2;
        _slots = new int[size];
        _mask = size - 1;
        for (int id = 0; id < count; id++)
        {
            var text = Utf8Of(id);
            int slot = Hash(text) & _mask;
            bool duplicate = false;
            for (; _slots[slot] != 0; slot = (slot + 1) & _mask)
                if (Utf8Of(_slots[slot] - 1).SequenceEqual(text)) { duplicate = true; break; }
            if (!duplicate) _slots[slot] = id + 1;
        }
    }

    public int Count => _starts.Length - 1;

    /// <summary>Whether every token is valid UTF-16 (no lone surrogate), so that the table can hold them.</summary>
    public static bool CanHold(IReadOnlyList<string?> tokens)
    {
        foreach (var token in tokens)
        {
            if (token is null) return false;
            var text = token.AsSpan();
            int at = text.IndexOfAnyInRange('\uD800', '\uDFFF');
            while (at >= 0)
            {
                if (!char.IsHighSurrogate(text[at]) || at + 1 >= text.Length || !char.IsLowSurrogate(text[at + 1])) return false;
                int next = text[(at + 2)..].IndexOfAnyInRange('\uD800', '\uDFFF');
                at = next < 0 ? -1 : at + 2 + next;
            }
        }
        return true;
    }

    /// <summary>Token <paramref name="id"/>'s text as UTF-8 (a view; the caller checks the id).</summary>
    public ReadOnlySpan<byte> Utf8Of(int id) => _utf8.AsSpan(_starts[id], _starts[id + 1] - _starts[id]);

    /// <summary>Token <paramref name="id"/>'s text as a string (allocated on each call).</summary>
    public string StringOf(int id) => Encoding.UTF8.GetString(Utf8Of(id));

    /// <summary>The id of the token whose UTF-8 text is <paramref name="utf8"/> (the first such id).</summary>
    public bool TryGetId(ReadOnlySpan<byte> utf8, out int id)
    {
        for (int slot = Hash(utf8) & _mask; _slots[slot] != 0; slot = (slot + 1) & _mask)
        {
            if (Utf8Of(_slots[slot] - 1).SequenceEqual(utf8))
            {
                id = _slots[slot] - 1;
                return true;
            }
        }
        id = -1;
        return false;
    }

    /// <summary>The id of the token whose text is <paramref name="text"/> (the first such id); text that is not valid UTF-16 is no token.</summary>
    public bool TryGetId(ReadOnlySpan<char> text, out int id)
    {
        int most = Encoding.UTF8.GetMaxByteCount(text.Length);
        byte[]? rented = most <= 512 ? null : ArrayPool<byte>.Shared.Rent(most);
        Span<byte> utf8 = rented ?? stackalloc byte[512];
        try
        {
            id = -1;
            return Utf8.FromUtf16(text, utf8, out _, out int written, replaceInvalidSequences: false) == OperationStatus.Done
                && TryGetId(utf8[..written], out id);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>The id of the token whose text is token <paramref name="left"/>'s followed by token <paramref name="right"/>'s (ids checked by the caller).</summary>
    public bool TryGetPairId(int left, int right, out int id)
    {
        var a = Utf8Of(left);
        var b = Utf8Of(right);
        int length = a.Length + b.Length;
        Span<byte> joined = length <= 512 ? stackalloc byte[length] : new byte[length];
        a.CopyTo(joined);
        b.CopyTo(joined[a.Length..]);
        return TryGetId(joined, out id);
    }

    /// <summary>
    /// xxHash32 seeded per process (System.HashCode): a vocabulary read from an untrusted file cannot be chosen to collide,
    /// as with the randomized string hashing of a Dictionary&lt;string, …&gt;.
    /// </summary>
    static int Hash(ReadOnlySpan<byte> utf8)
    {
        var hash = new HashCode();
        hash.AddBytes(utf8);
        return hash.ToHashCode();
    }

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
