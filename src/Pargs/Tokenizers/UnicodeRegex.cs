using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Pargs.Tokenizers;

/// <summary>
/// A .NET regex that matches by code point, as the Rust library's regex engines do. .NET's classes
/// (\p{L}, \p{N}, \s, ...) test UTF-16 code units, so a character outside the Basic Multilingual Plane
/// such as "𝟏" (U+1D7CF, a digit) is two surrogates that match neither \p{N} nor \p{L}. WHY a stand-in
/// rather than a hand-written scanner: any tokenizer.json regex keeps working. Text holding surrogate
/// pairs is matched on a copy where each pair is replaced by one BMP character of the same general
/// category (none of which appears literally in the tokenizer patterns), and match positions are mapped
/// back to the original text.
/// </summary>
public sealed class UnicodeRegex
{
    readonly Regex _regex;

    public UnicodeRegex(string pattern)
    {
        // A timeout bounds a pattern that backtracks catastrophically (a tokenizer.json is untrusted input).
        _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(10));
    }

    public string Pattern => _regex.ToString();

    /// <summary>Non-overlapping matches (start, end) in UTF-16 indices of <paramref name="text"/>, empty ones included.</summary>
    public void Matches(string text, List<(int Start, int End)> matches)
    {
        try { MatchAll(text, matches); }
        catch (RegexMatchTimeoutException)
        {
            throw new PargsException($"the tokenizer regex \"{_regex}\" took over 10 s on one piece of a {text.Length}-character text (it backtracks catastrophically).");
        }
    }

    void MatchAll(string text, List<(int Start, int End)> matches)
    {
        matches.Clear();
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            for (var m = _regex.Match(text); m.Success; m = m.NextMatch()) matches.Add((m.Index, m.Index + m.Length));
            return;
        }
        var standIn = new StringBuilder(text.Length);
        var originalIndex = new List<int>(text.Length + 1); // standIn index → text index
        for (int i = 0; i < text.Length; i++)
        {
            originalIndex.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                standIn.Append(StandIn(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))));
                i++;
            }
            else standIn.Append(text[i]);
        }
        originalIndex.Add(text.Length);
        for (var m = _regex.Match(standIn.ToString()); m.Success; m = m.NextMatch())
            matches.Add((originalIndex[m.Index], originalIndex[m.Index + m.Length]));
    }

    /// <summary>A BMP character of <paramref name="category"/> (outside ASCII, so no pattern names it literally).</summary>
    static char StandIn(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => '\u0416',
        UnicodeCategory.LowercaseLetter => '\u0436',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\u05D0',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\u16EE',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '\u00A1',
        UnicodeCategory.MathSymbol => '\u00AC',
        UnicodeCategory.CurrencySymbol => '\u00A2',
        UnicodeCategory.ModifierSymbol => '\u02C2',
        UnicodeCategory.OtherSymbol => '\u00A6',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        _ => '\u0378', // unassigned
    };
}
