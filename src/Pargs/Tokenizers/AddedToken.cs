using System.Text;

namespace Pargs.Tokenizers;

/// <summary>One entry of tokenizer.json's <c>added_tokens</c>: matched literally in the text before the model.</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false,
    bool SingleWord = false, bool Normalized = false);

/// <summary>
/// Cuts text into plain stretches and added-token matches as the Rust library's added vocabulary does:
/// leftmost match first, the longest of those starting there ("&lt;|im_end|&gt;" wins over a shorter token);
/// a single_word token only between non-word characters; lstrip/rstrip swallow the whitespace beside it.
/// </summary>
internal sealed class AddedTokenSplitter
{
    readonly List<Dictionary<char, int>?> _children = [null];
    readonly List<AddedToken?> _tokenAt = [null];

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        foreach (var t in tokens)
        {
            if (t.Content.Length == 0) continue;
            int node = 0;
            foreach (var c in t.Content)
            {
                var children = _children[node] ??= new Dictionary<char, int>();
                if (!children.TryGetValue(c, out var child))
                {
                    child = _children.Count;
                    children[c] = child;
                    _children.Add(null);
                    _tokenAt.Add(null);
                }
                node = child;
            }
            _tokenAt[node] ??= t;
        }
    }

    public bool IsEmpty => _children[0] is null;

    /// <summary>Segments in order: (text, null) for plain text, (matched text, token) for a match.</summary>
    public List<(string Text, AddedToken? Token)> Split(string text)
    {
        var parts = new List<(string, AddedToken?)>();
        if (IsEmpty) { parts.Add((text, null)); return parts; }
        int plainStart = 0, i = 0;
        while (i < text.Length)
        {
            var match = LongestAt(text, i);
            if (match is null) { i++; continue; }
            int start = i, end = i + match.Content.Length;
            if (match.SingleWord && ((start > 0 && IsWordBefore(text, start)) || (end < text.Length && IsWordAt(text, end))))
            {
                i = end; // the Rust library's matcher moves on past a discarded match
                continue;
            }
            if (match.LStrip) while (start > plainStart && UnicodeClasses.IsWhitespace(text[start - 1])) start--;
            if (match.RStrip) while (end < text.Length && UnicodeClasses.IsWhitespace(text[end])) end++;
            if (start > plainStart) parts.Add((text[plainStart..start], null));
            parts.Add((text[start..end], match));
            plainStart = i = end;
        }
        if (plainStart < text.Length || parts.Count == 0) parts.Add((text[plainStart..], null));
        return parts;
    }

    AddedToken? LongestAt(string text, int at)
    {
        AddedToken? best = null;
        int node = 0;
        for (int i = at; i < text.Length; i++)
        {
            if (_children[node] is not { } children || !children.TryGetValue(text[i], out node)) break;
            if (_tokenAt[node] is { } t) best = t;
        }
        return best;
    }

    static bool IsWordBefore(string text, int at) =>
        Rune.DecodeLastFromUtf16(text.AsSpan(0, at), out var r, out _) == System.Buffers.OperationStatus.Done && UnicodeClasses.IsWordChar(r);

    static bool IsWordAt(string text, int at) =>
        Rune.DecodeFromUtf16(text.AsSpan(at), out var r, out _) == System.Buffers.OperationStatus.Done && UnicodeClasses.IsWordChar(r);
}
