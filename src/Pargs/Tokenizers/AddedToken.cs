namespace Pargs.Tokenizers;

/// <summary>One entry of tokenizer.json's <c>added_tokens</c>: matched literally in the text before BPE.</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false,
    bool SingleWord = false, bool Normalized = false);

/// <summary>
/// Cuts text into plain segments and added-token matches, leftmost-longest as HF's added-vocabulary does
/// (so "&lt;|im_end|&gt;" wins over a shorter token starting at the same place).
/// </summary>
internal sealed class AddedTokenSplitter
{
    readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    /// <summary>Segments in order: (text, null) for plain text to tokenize, ("", token) for a match.</summary>
    public List<(string Text, AddedToken? Token)> Split(string text)
    {
        var parts = new List<(string, AddedToken?)>();
        if (_byFirstChar.Count == 0) { if (text.Length > 0) parts.Add((text, null)); return parts; }
        int plainStart = 0, i = 0;
        while (i < text.Length)
        {
            var match = MatchAt(text, i);
            if (match is null) { i++; continue; }
            int start = i, end = i + match.Content.Length;
            // lstrip / rstrip: the token swallows the whitespace beside it.
            if (match.LStrip) while (start > plainStart && char.IsWhiteSpace(text[start - 1])) start--;
            if (match.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            if (start > plainStart) parts.Add((text[plainStart..start], null));
            parts.Add(("", match));
            plainStart = i = end;
        }
        if (plainStart < text.Length) parts.Add((text[plainStart..], null));
        return parts;
    }

    AddedToken? MatchAt(string text, int at)
    {
        if (!_byFirstChar.TryGetValue(text[at], out var candidates)) return null;
        foreach (var t in candidates)
        {
            if (at + t.Content.Length > text.Length) continue;
            if (string.CompareOrdinal(text, at, t.Content, 0, t.Content.Length) != 0) continue;
            if (t.SingleWord && !IsWordBoundary(text, at, at + t.Content.Length)) continue;
            return t;
        }
        return null;
    }

    static bool IsWordBoundary(string text, int start, int end) =>
        (start == 0 || !char.IsLetterOrDigit(text[start - 1])) && (end == text.Length || !char.IsLetterOrDigit(text[end]));
}
