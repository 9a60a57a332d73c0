using System.Text;

namespace Pargs.Tokenizers;

/// <summary>A tokenizer.json normalizer: text → text, applied to each stretch between added tokens.</summary>
internal abstract class TextNormalizer
{
    public abstract string Normalize(string text);
}

internal sealed class SequenceNormalizer(IReadOnlyList<TextNormalizer> normalizers) : TextNormalizer
{
    public IReadOnlyList<TextNormalizer> Items => normalizers;

    public override string Normalize(string text)
    {
        foreach (var n in normalizers) text = n.Normalize(text);
        return text;
    }
}

/// <summary>NFC, NFD, NFKC or NFKD.</summary>
internal sealed class UnicodeFormNormalizer(NormalizationForm form) : TextNormalizer
{
    public override string Normalize(string text) => text.IsNormalized(form) ? text : text.Normalize(form);
}

internal sealed class LowercaseNormalizer : TextNormalizer
{
    public override string Normalize(string text) => UnicodeClasses.Lowercase(text);
}

/// <summary>Removes whitespace (Unicode White_Space) at the start and/or end.</summary>
internal sealed class StripNormalizer(bool left, bool right) : TextNormalizer
{
    public override string Normalize(string text)
    {
        int start = 0, end = text.Length;
        if (left) while (start < end && UnicodeClasses.IsWhitespace(text[start])) start++;
        if (right) while (end > start && UnicodeClasses.IsWhitespace(text[end - 1])) end--;
        return text[start..end];
    }
}

/// <summary>Drops combining marks (used after NFD to strip accents).</summary>
internal sealed class StripAccentsNormalizer : TextNormalizer
{
    public override string Normalize(string text) => Filter(text, r => !UnicodeClasses.IsMark(r));

    public static string Filter(string text, Func<Rune, bool> keep)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var r in text.EnumerateRunes()) if (keep(r)) sb.Append(r.ToString());
        return sb.ToString();
    }
}

/// <summary>Replaces every match of a literal or regex pattern.</summary>
internal sealed class ReplaceNormalizer(SplitPattern pattern, string content) : TextNormalizer
{
    public override string Normalize(string text) => Replace(pattern, content, text);

    public static string Replace(SplitPattern pattern, string content, string text)
    {
        var spans = new List<(int Start, int End, bool IsMatch)>();
        pattern.Spans(text, spans);
        var sb = new StringBuilder(text.Length);
        foreach (var (start, end, isMatch) in spans) sb.Append(isMatch ? content : text.AsSpan(start, end - start));
        return sb.ToString();
    }
}

/// <summary>Puts a fixed string before any non-empty text.</summary>
internal sealed class PrependNormalizer(string prepend) : TextNormalizer
{
    public string Prepend => prepend;

    public override string Normalize(string text) => text.Length == 0 ? text : prepend + text;
}

/// <summary>
/// BERT's normalizer: drop NUL, U+FFFD and control characters and map whitespace to spaces (clean_text), put
/// spaces around CJK ideographs (handle_chinese_chars), strip accents (NFD then drop Mn; defaults to
/// lowercase's value), lowercase.
/// </summary>
internal sealed class BertNormalizer(bool cleanText, bool handleChineseChars, bool? stripAccents, bool lowercase) : TextNormalizer
{
    public override string Normalize(string text)
    {
        if (cleanText)
        {
            var sb = new StringBuilder(text.Length);
            foreach (var r in text.EnumerateRunes())
            {
                // Dropped first (so a control character that is also whitespace, such as U+0085, is dropped), then
                // whitespace becomes a space; tab, newline and carriage return count as whitespace, not control.
                bool tabOrNewline = r.Value is '\t' or '\n' or '\r';
                if (r.Value is 0 or 0xFFFD || (!tabOrNewline && UnicodeClasses.IsOther(r))) continue;
                sb.Append(tabOrNewline || UnicodeClasses.IsWhitespace(r) ? " " : r.ToString());
            }
            text = sb.ToString();
        }
        if (handleChineseChars)
        {
            var sb = new StringBuilder(text.Length);
            foreach (var r in text.EnumerateRunes())
            {
                if (IsChineseChar(r.Value)) sb.Append(' ').Append(r.ToString()).Append(' ');
                else sb.Append(r.ToString());
            }
            text = sb.ToString();
        }
        if (stripAccents ?? lowercase)
        {
            text = StripAccentsNormalizer.Filter(text.Normalize(NormalizationForm.FormD),
                r => Rune.GetUnicodeCategory(r) != System.Globalization.UnicodeCategory.NonSpacingMark);
        }
        if (lowercase) text = UnicodeClasses.Lowercase(text);
        return text;
    }

    static bool IsChineseChar(int c) =>
        c is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B920 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}

/// <summary>
/// SentencePiece's compiled normalization rules (the <c>precompiled_charsmap</c> of DeBERTa-v3, T5, ALBERT, XLM-R
/// tokenizer.json files), run as Hugging Face's library runs them. The blob is a little-endian u32 byte size of a
/// darts-clone double-array trie, the trie's u32 units, then a pool of NUL-terminated replacement strings; a key's
/// trie value is the offset of its replacement in the pool. Text is walked by extended grapheme cluster: a cluster of
/// fewer than 6 UTF-8 bytes whose bytes start with a rule is replaced whole by the <b>shortest</b> matching rule
/// (the reference's rule, even though it can drop the rest of the cluster); otherwise each character is replaced by its
/// own rule or kept.
/// </summary>
internal sealed class PrecompiledNormalizer : TextNormalizer
{
    readonly uint[] trie;
    readonly byte[] pool;
    readonly string source;

    PrecompiledNormalizer(uint[] trie, byte[] pool, string source)
    {
        this.trie = trie;
        this.pool = pool;
        this.source = source;
    }

    /// <summary>Reads the base64 charsmap; <paramref name="source"/> names the file and field for errors.</summary>
    public static PrecompiledNormalizer FromBase64(string charsmap, string source)
    {
        byte[] blob;
        try { blob = Convert.FromBase64String(charsmap); }
        catch (FormatException) { throw new PargsException($"{source}: precompiled_charsmap is not valid base64"); }
        if (blob.Length < 4) throw new PargsException($"{source}: precompiled_charsmap is {blob.Length} bytes, too short for its trie size");
        uint trieBytes = BitConverter.ToUInt32(blob, 0); // little-endian in the file; .NET runs little-endian here
        if (!BitConverter.IsLittleEndian) trieBytes = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(trieBytes);
        long trieUnits = trieBytes / 4;
        if (4 + trieUnits * 4 > blob.Length)
            throw new PargsException($"{source}: precompiled_charsmap claims a {trieBytes}-byte trie but holds {blob.Length - 4} bytes after the size");
        var trie = new uint[trieUnits];
        for (long i = 0; i < trieUnits; i++) trie[i] = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + (int)i * 4, 4));
        var pool = blob[(4 + (int)trieUnits * 4)..];
        if (Json.CheckedJson.FirstInvalidUtf8(pool) is var bad && bad >= 0)
            throw new PargsException($"{source}: the replacement strings of precompiled_charsmap are not valid UTF-8 (byte {bad})");
        return new PrecompiledNormalizer(trie, pool, source);
    }

    // darts-clone unit fields.
    static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;
    static uint Value(uint unit) => unit & ((1u << 31) - 1);
    static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);
    static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

    /// <summary>The value of the shortest key that is a prefix of <paramref name="key"/>, or null.</summary>
    long? FirstPrefixValue(ReadOnlySpan<byte> key)
    {
        if (trie.Length == 0) return null;
        long position = Offset(trie[0]);
        foreach (byte c in key)
        {
            if (c == 0) return null;
            position ^= c;
            if (position >= trie.Length) return null; // outside the array: no such edge
            uint unit = trie[position];
            if (Label(unit) != c) return null;
            position ^= Offset(unit);
            if (HasLeaf(unit)) return position < trie.Length ? Value(trie[position]) : throw Malformed();
        }
        return null;
    }

    PargsException Malformed() => new($"{source}: precompiled_charsmap is malformed (a trie entry points outside the trie or its replacement strings)");

    /// <summary>The replacement of the shortest rule matching a prefix of <paramref name="chunk"/>, or null.</summary>
    string? Transform(string chunk)
    {
        Span<byte> buffer = stackalloc byte[32];
        int length = Encoding.UTF8.GetByteCount(chunk);
        var bytes = length <= buffer.Length ? buffer[..length] : new byte[length];
        Encoding.UTF8.GetBytes(chunk, bytes);
        if (FirstPrefixValue(bytes) is not long start) return null;
        if (start > pool.Length) throw Malformed();
        int end = (int)start;
        while (end < pool.Length && pool[end] != 0) end++;
        var replacement = pool.AsSpan((int)start, end - (int)start);
        if (Json.CheckedJson.FirstInvalidUtf8(replacement) >= 0) throw Malformed(); // a rule starting inside a character
        return Encoding.UTF8.GetString(replacement);
    }

    public override string Normalize(string text)
    {
        var result = new StringBuilder(text.Length);
        var clusters = System.Globalization.StringInfo.GetTextElementEnumerator(text);
        while (clusters.MoveNext())
        {
            string cluster = clusters.GetTextElement();
            if (Encoding.UTF8.GetByteCount(cluster) < 6 && Transform(cluster) is { } whole)
            {
                result.Append(whole);
                continue;
            }
            foreach (var rune in cluster.EnumerateRunes())
            {
                string character = rune.ToString();
                result.Append(Transform(character) ?? character);
            }
        }
        return result.ToString();
    }
}
