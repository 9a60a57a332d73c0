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
