using System.Text;

namespace Pargs.Tokenizers;

/// <summary>A piece of text on its way to the model; <paramref name="AtStart"/>: it begins the original text.</summary>
internal readonly record struct PreToken(string Text, bool AtStart);

/// <summary>A tokenizer.json pre-tokenizer: cuts pieces into smaller pieces (and may rewrite them).</summary>
internal abstract class PreTokenizer
{
    public abstract void PreTokenize(List<PreToken> pieces);

    /// <summary>Replaces every piece by the non-empty pieces <paramref name="split"/> makes of it.</summary>
    protected static void SplitEach(List<PreToken> pieces, Action<PreToken, List<PreToken>> split)
    {
        var result = new List<PreToken>(pieces.Count * 2);
        var parts = new List<PreToken>();
        foreach (var piece in pieces)
        {
            parts.Clear();
            split(piece, parts);
            foreach (var p in parts) if (p.Text.Length > 0) result.Add(p);
        }
        pieces.Clear();
        pieces.AddRange(result);
    }

    protected static void SplitWith(SplitPattern pattern, SplitBehavior behavior, bool invert, PreToken piece, List<PreToken> parts)
    {
        var ranges = new List<(int Start, int End)>();
        pattern.Split(piece.Text, behavior, invert, ranges);
        foreach (var (start, end) in ranges)
            parts.Add(new PreToken(piece.Text[start..end], piece.AtStart && start == 0));
    }
}

internal sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> preTokenizers) : PreTokenizer
{
    public IReadOnlyList<PreTokenizer> Items => preTokenizers;

    public override void PreTokenize(List<PreToken> pieces)
    {
        foreach (var p in preTokenizers) p.PreTokenize(pieces);
    }
}

/// <summary>Split: a literal or regex pattern with one of the five delimiter behaviours, optionally inverted.</summary>
internal sealed class SplitPreTokenizer(SplitPattern pattern, SplitBehavior behavior, bool invert) : PreTokenizer
{
    public override void PreTokenize(List<PreToken> pieces) =>
        SplitEach(pieces, (piece, parts) => SplitWith(pattern, behavior, invert, piece, parts));
}

/// <summary>
/// GPT-2's ByteLevel: optionally a space before each piece, optionally GPT-2's regex split, then every UTF-8
/// byte written as its printable stand-in (<see cref="ByteLevelAlphabet"/>).
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    static readonly RegexPattern Gpt2 = new(new UnicodeRegex(Gpt2Pattern));

    public override void PreTokenize(List<PreToken> pieces)
    {
        SplitEach(pieces, (piece, parts) =>
        {
            if (addPrefixSpace && !piece.Text.StartsWith(' ')) piece = piece with { Text = " " + piece.Text };
            if (useRegex) SplitWith(Gpt2, SplitBehavior.Isolated, false, piece, parts);
            else parts.Add(piece);
            for (int i = 0; i < parts.Count; i++) parts[i] = parts[i] with { Text = ByteLevelAlphabet.Encode(Encoding.UTF8.GetBytes(parts[i].Text)) };
        });
    }
}

internal enum PrependScheme { Always, First, Never }

/// <summary>
/// Metaspace: spaces become the replacement character ("▁"), which is also put before a piece that does not
/// start with it (always, or only for the piece that begins the text), and pieces are cut before each "▁".
/// </summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : PreTokenizer
{
    readonly CharPattern _replacement = new(r => r.Value == replacement);

    public bool Prepends => scheme != PrependScheme.Never;

    public override void PreTokenize(List<PreToken> pieces)
    {
        SplitEach(pieces, (piece, parts) =>
        {
            var text = piece.Text.Replace(' ', replacement);
            if (!text.StartsWith(replacement) && (scheme == PrependScheme.Always || (scheme == PrependScheme.First && piece.AtStart)))
                text = replacement + text;
            var rewritten = piece with { Text = text };
            if (split) SplitWith(_replacement, SplitBehavior.MergedWithNext, false, rewritten, parts);
            else parts.Add(rewritten);
        });
    }
}

/// <summary>Whitespace: runs of word characters and runs of other non-space characters; whitespace dropped.</summary>
internal sealed class WhitespacePreTokenizer : PreTokenizer
{
    const string Word = @"\p{L}\p{M}\p{Nd}\p{Pc}\p{Nl}\u200C\u200D";
    static readonly RegexPattern WordsOrSymbols = new(new UnicodeRegex($@"[{Word}]+|[^{Word}\s]+"));

    public override void PreTokenize(List<PreToken> pieces) =>
        SplitEach(pieces, (piece, parts) => SplitWith(WordsOrSymbols, SplitBehavior.Removed, invert: true, piece, parts));
}

/// <summary>WhitespaceSplit: cut on whitespace, which is dropped.</summary>
internal sealed class WhitespaceSplitPreTokenizer : PreTokenizer
{
    static readonly CharPattern Space = new(UnicodeClasses.IsWhitespace);

    public override void PreTokenize(List<PreToken> pieces) =>
        SplitEach(pieces, (piece, parts) => SplitWith(Space, SplitBehavior.Removed, false, piece, parts));
}

/// <summary>Punctuation: each punctuation character handled with the given behaviour (Isolated by default).</summary>
internal sealed class PunctuationPreTokenizer(SplitBehavior behavior) : PreTokenizer
{
    static readonly CharPattern Punctuation = new(UnicodeClasses.IsPunctuation);

    public override void PreTokenize(List<PreToken> pieces) =>
        SplitEach(pieces, (piece, parts) => SplitWith(Punctuation, behavior, false, piece, parts));
}

/// <summary>BertPreTokenizer: cut on whitespace (dropped), then isolate each punctuation character.</summary>
internal sealed class BertPreTokenizer : PreTokenizer
{
    readonly WhitespaceSplitPreTokenizer _whitespace = new();
    readonly PunctuationPreTokenizer _punctuation = new(SplitBehavior.Isolated);

    public override void PreTokenize(List<PreToken> pieces)
    {
        _whitespace.PreTokenize(pieces);
        _punctuation.PreTokenize(pieces);
    }
}

/// <summary>Digits: each digit alone (individual_digits) or runs of digits together.</summary>
internal sealed class DigitsPreTokenizer(bool individual) : PreTokenizer
{
    static readonly CharPattern Digit = new(UnicodeClasses.IsNumeric);

    public override void PreTokenize(List<PreToken> pieces) =>
        SplitEach(pieces, (piece, parts) =>
            SplitWith(Digit, individual ? SplitBehavior.Isolated : SplitBehavior.Contiguous, false, piece, parts));
}
