namespace Pargs.Tokenizers;

/// <summary>
/// WordPiece (BERT): greedy longest match from the left, pieces after the first carry the continuing-subword
/// prefix ("##"); a word with an unmatchable rest, or longer than max_input_chars_per_word characters, is
/// the unknown token as a whole.
/// </summary>
internal sealed class WordPieceModel(string?[] tokens, Dictionary<string, int> vocab, string unknownToken,
    string continuingSubwordPrefix, int maxInputCharsPerWord) : TokenizerModel
{
    // Candidates longer than the longest vocabulary entry cannot match, so the search starts at that length
    // (the result is the same; a 100-character word no longer costs thousands of lookups), and pieces are
    // looked up as spans, without a string each.
    readonly int _longestToken = vocab.Keys.Select(k => k.Length).DefaultIfEmpty(0).Max();
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _bySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();

    public string UnknownToken => unknownToken;
    public string ContinuingSubwordPrefix => continuingSubwordPrefix;
    public override int Size => tokens.Length;
    public override string? IdToToken(int id) => id >= 0 && id < tokens.Length ? tokens[id] : null;
    public override bool TryGetId(string token, out int id) => vocab.TryGetValue(token, out id);

    public override void Tokenize(string word, List<int> ids)
    {
        int unknown = vocab.TryGetValue(unknownToken, out var u) ? u
            : throw new PargsException($"tokenizer.json: model.unk_token \"{unknownToken}\" is not in model.vocab.");
        int chars = 0;
        foreach (var _ in word.EnumerateRunes()) chars++;
        if (chars > maxInputCharsPerWord) { ids.Add(unknown); return; }
        int before = ids.Count, start = 0;
        Span<char> buffer = _longestToken <= 512 ? stackalloc char[_longestToken + 1] : new char[_longestToken + 1];
        while (start < word.Length)
        {
            int found = -1;
            int end = Math.Min(word.Length, start + _longestToken);
            if (end < word.Length && char.IsLowSurrogate(word[end]) && end > start) end--; // never cut a surrogate pair
            while (start < end)
            {
                scoped ReadOnlySpan<char> piece = word.AsSpan(start, end - start);
                if (start > 0)
                {
                    int length = continuingSubwordPrefix.Length + piece.Length;
                    if (length > _longestToken) { end -= char.IsLowSurrogate(word[end - 1]) && end - 2 >= start ? 2 : 1; continue; }
                    continuingSubwordPrefix.AsSpan().CopyTo(buffer);
                    piece.CopyTo(buffer[continuingSubwordPrefix.Length..]);
                    piece = buffer[..length];
                }
                if (_bySpan.TryGetValue(piece, out found)) break;
                found = -1;
                end -= char.IsLowSurrogate(word[end - 1]) && end - 2 >= start ? 2 : 1;
            }
            if (found < 0)
            {
                ids.RemoveRange(before, ids.Count - before);
                ids.Add(unknown);
                return;
            }
            ids.Add(found);
            start = end;
        }
    }
}
