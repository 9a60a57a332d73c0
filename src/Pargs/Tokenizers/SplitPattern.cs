using System.Text;

namespace Pargs.Tokenizers;

/// <summary>What a split does with the delimiters it finds (Hugging Face's SplitDelimiterBehavior).</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>
/// Something text is split on: a literal string, a regex, or a per-character test. <see cref="Spans"/> cuts
/// a text into consecutive spans, each marked as a match of the pattern or a gap between matches.
/// </summary>
internal abstract class SplitPattern
{
    public abstract void Spans(string text, List<(int Start, int End, bool IsMatch)> spans);

    /// <summary>The pieces of <paramref name="text"/> after splitting with <paramref name="behavior"/> (empty pieces dropped).</summary>
    public void Split(string text, SplitBehavior behavior, bool invert, List<(int Start, int End)> pieces)
    {
        pieces.Clear();
        var spans = new List<(int Start, int End, bool IsMatch)>();
        Spans(text, spans);
        if (invert) for (int i = 0; i < spans.Count; i++) spans[i] = spans[i] with { IsMatch = !spans[i].IsMatch };
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var s in spans) Add(pieces, s.Start, s.End);
                break;
            case SplitBehavior.Removed:
                foreach (var s in spans) if (!s.IsMatch) Add(pieces, s.Start, s.End);
                break;
            case SplitBehavior.Contiguous:
            {
                var merged = new List<(int Start, int End)>();
                bool previous = false;
                foreach (var s in spans)
                {
                    if (merged.Count > 0 && s.IsMatch == previous) merged[^1] = (merged[^1].Start, s.End);
                    else merged.Add((s.Start, s.End));
                    previous = s.IsMatch;
                }
                foreach (var m in merged) Add(pieces, m.Start, m.End);
                break;
            }
            case SplitBehavior.MergedWithPrevious:
            {
                var merged = new List<(int Start, int End)>();
                bool previous = false;
                foreach (var s in spans)
                {
                    if (s.IsMatch && !previous && merged.Count > 0) merged[^1] = (merged[^1].Start, s.End);
                    else merged.Add((s.Start, s.End));
                    previous = s.IsMatch;
                }
                foreach (var m in merged) Add(pieces, m.Start, m.End);
                break;
            }
            case SplitBehavior.MergedWithNext:
            {
                var merged = new List<(int Start, int End)>();
                bool previous = false;
                for (int i = spans.Count - 1; i >= 0; i--)
                {
                    var s = spans[i];
                    if (s.IsMatch && !previous && merged.Count > 0) merged[^1] = (s.Start, merged[^1].End);
                    else merged.Add((s.Start, s.End));
                    previous = s.IsMatch;
                }
                for (int i = merged.Count - 1; i >= 0; i--) Add(pieces, merged[i].Start, merged[i].End);
                break;
            }
        }
    }

    static void Add(List<(int, int)> pieces, int start, int end)
    {
        if (end > start) pieces.Add((start, end));
    }

    /// <summary>Spans from a list of (start, end) matches: every gap and every non-empty match in order.</summary>
    protected static void FromMatches(string text, List<(int Start, int End)> matches, List<(int, int, bool)> spans)
    {
        spans.Clear();
        int previous = 0;
        foreach (var (start, end) in matches)
        {
            if (start > previous) spans.Add((previous, start, false));
            spans.Add((start, end, true));
            previous = end;
        }
        if (previous < text.Length) spans.Add((previous, text.Length, false));
    }
}

internal sealed class RegexPattern(UnicodeRegex regex) : SplitPattern
{
    public override void Spans(string text, List<(int Start, int End, bool IsMatch)> spans)
    {
        var matches = new List<(int Start, int End)>();
        regex.Matches(text, matches);
        FromMatches(text, matches, spans);
    }
}

internal sealed class LiteralPattern(string literal) : SplitPattern
{
    public override void Spans(string text, List<(int Start, int End, bool IsMatch)> spans)
    {
        var matches = new List<(int Start, int End)>();
        if (literal.Length > 0)
        {
            for (int at = text.IndexOf(literal, StringComparison.Ordinal); at >= 0;
                 at = text.IndexOf(literal, at + literal.Length, StringComparison.Ordinal))
                matches.Add((at, at + literal.Length));
        }
        FromMatches(text, matches, spans);
    }
}

/// <summary>Every character (code point) for which the test holds is a match of its own.</summary>
internal sealed class CharPattern(Func<Rune, bool> test) : SplitPattern
{
    public override void Spans(string text, List<(int Start, int End, bool IsMatch)> spans)
    {
        var matches = new List<(int Start, int End)>();
        int at = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (test(rune)) matches.Add((at, at + rune.Utf16SequenceLength));
            at += rune.Utf16SequenceLength;
        }
        FromMatches(text, matches, spans);
    }
}
