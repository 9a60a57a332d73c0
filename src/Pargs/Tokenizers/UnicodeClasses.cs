using System.Globalization;
using System.Text;

namespace Pargs.Tokenizers;

/// <summary>The character tests of the Rust library's normalizers and pre-tokenizers, by code point.</summary>
internal static class UnicodeClasses
{
    /// <summary>Unicode's White_Space property (Rust's <c>char::is_whitespace</c>).</summary>
    public static bool IsWhitespace(Rune r) => r.Value switch
    {
        >= 0x09 and <= 0x0D or 0x20 or 0x85 or 0xA0 or 0x1680 or >= 0x2000 and <= 0x200A
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    public static bool IsWhitespace(char c) => IsWhitespace(new Rune(char.IsSurrogate(c) ? 'a' : c));

    /// <summary>ASCII punctuation (symbols such as $ + &lt; included) or any Unicode punctuation (P*).</summary>
    public static bool IsPunctuation(Rune r) =>
        (r.Value < 128 && char.IsAsciiLetterOrDigit((char)r.Value) == false && r.Value > 32 && r.Value < 127) ||
        Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    /// <summary>Rust's <c>char::is_numeric</c>: Nd, Nl or No.</summary>
    public static bool IsNumeric(Rune r) =>
        Rune.GetUnicodeCategory(r) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    /// <summary>Unicode "Other" (C*): control, format, surrogate, private use, unassigned.</summary>
    public static bool IsOther(Rune r) =>
        Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;

    public static bool IsMark(Rune r) =>
        Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;

    /// <summary>A "word" character as the regex \w of the Rust library's added-token single_word check.</summary>
    public static bool IsWordChar(Rune r) =>
        Rune.IsLetterOrDigit(r) || IsMark(r) || Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation
            or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber || r.Value is 0x200C or 0x200D;

    /// <summary>Full Unicode lowercase (U+0130 İ becomes "i̇", two characters, as in Rust).</summary>
    public static string Lowercase(string s)
    {
        if (!s.Contains('\u0130')) return s.ToLowerInvariant();
        return s.Replace("\u0130", "i\u0307").ToLowerInvariant();
    }
}
