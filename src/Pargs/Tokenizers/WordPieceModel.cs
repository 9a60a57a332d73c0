namespace Pargs.Tokenizers;

/// <summary>
/// WordPiece (BERT): greedy longest match from the left, pieces after the first carry the continuing-subword
/// prefix ("##"); a word with an unmatchable rest, or longer than max_input_chars_per_word characters, is
/// the unknown token as a whole.
/// </summary>
internal sealed class WordPieceModel(string?[] tokens, Dictionary<string, int> vocab, string unknownToken,
    string continuingSubwordPrefix, int maxInputCharsPerWord) : TokenizerModel
{
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
        while (start < word.Length)
        {
            int end = word.Length, found = -1;
            while (start < end)
            {
                var piece = start > 0 ? continuingSubwordPrefix + word[start..end] : word[start..end];
                if (vocab.TryGetValue(piece, out found)) break;
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
