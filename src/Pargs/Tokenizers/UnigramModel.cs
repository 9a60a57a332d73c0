using System.Text;

namespace Pargs.Tokenizers;

/// <summary>
/// The Unigram model (SentencePiece's, as in DeBERTa-v3 and T5): the segmentation of a piece that maximises
/// the sum of the vocabulary scores (Viterbi over every vocabulary match at every position). A character no
/// piece covers is the unknown token with score min_score − 10; neighbouring unknowns are fused into one.
/// With byte_fallback an unknown stretch becomes its UTF-8 bytes as "&lt;0xAB&gt;" pieces.
/// </summary>
internal sealed class UnigramModel : TokenizerModel
{
    const double UnknownPenalty = 10.0;

    readonly string[] _pieces;
    readonly double[] _scores;
    readonly Dictionary<string, int> _idOf = new(StringComparer.Ordinal);
    readonly Trie _trie = new();
    readonly double _unknownScore;

    public UnigramModel(string[] pieces, double[] scores, int? unknownId, bool byteFallback)
    {
        (_pieces, _scores, UnknownId, ByteFallback) = (pieces, scores, unknownId, byteFallback);
        double min = double.MaxValue;
        for (int id = 0; id < pieces.Length; id++)
        {
            _idOf.TryAdd(pieces[id], id);
            _trie.Add(pieces[id], id);
            min = Math.Min(min, scores[id]);
        }
        _unknownScore = (pieces.Length == 0 ? 0 : min) - UnknownPenalty;
    }

    public int? UnknownId { get; }
    public bool ByteFallback { get; }
    public IReadOnlyList<string> Pieces => _pieces;
    public IReadOnlyList<double> Scores => _scores;
    public override int Size => _pieces.Length;
    public override string? IdToToken(int id) => id >= 0 && id < _pieces.Length ? _pieces[id] : null;
    public override bool TryGetId(string token, out int id) => _idOf.TryGetValue(token, out id);

    public override void Tokenize(string word, List<int> ids)
    {
        int n = word.Length;
        if (n == 0) return;
        // best[end]: the best segmentation of word[..end] ends with piece id best[end].Id starting at .Start.
        var score = new double[n + 1];
        var startOf = new int[n + 1];
        var idAt = new int[n + 1];
        Array.Fill(startOf, -1);
        startOf[0] = 0;
        var matches = new List<(int Length, int Id)>();
        for (int start = 0; start < n;)
        {
            int charLength = char.IsHighSurrogate(word[start]) && start + 1 < n && char.IsLowSurrogate(word[start + 1]) ? 2 : 1;
            if (startOf[start] < 0) { start += charLength; continue; }
            double here = score[start];
            bool singleChar = false;
            _trie.PrefixesAt(word, start, matches);
            foreach (var (length, id) in matches)
            {
                int end = start + length;
                double candidate = here + _scores[id];
                if (startOf[end] < 0 || candidate > score[end]) (score[end], startOf[end], idAt[end]) = (candidate, start, id);
                if (length == charLength) singleChar = true;
            }
            if (!singleChar)
            {
                int unknown = UnknownId ?? throw new PargsException("tokenizer.json: model.unk_id is not set but the Unigram model met a character it has no piece for.");
                int end = start + charLength;
                double candidate = here + _unknownScore;
                if (startOf[end] < 0 || candidate > score[end]) (score[end], startOf[end], idAt[end]) = (candidate, start, unknown);
            }
            start += charLength;
        }
        // Walk back from the end; consecutive unknowns become one.
        var pieces = new List<(int Start, int End, int Id)>();
        for (int end = n; end > 0;)
        {
            int start = startOf[end];
            int id = idAt[end];
            if (UnknownId is int unk && id == unk && pieces.Count > 0 && pieces[^1].Id == unk && pieces[^1].Start == end)
                pieces[^1] = (start, pieces[^1].End, unk);
            else pieces.Add((start, end, id));
            end = start;
        }
        pieces.Reverse();
        foreach (var (start, end, id) in pieces)
        {
            var text = word[start..end];
            if (_idOf.TryGetValue(text, out var known)) { ids.Add(known); continue; }
            if (ByteFallback && ByteIds(text) is List<int> bytes) { ids.AddRange(bytes); continue; }
            ids.Add(id);
        }
    }

    List<int>? ByteIds(string text)
    {
        var result = new List<int>();
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            if (!_idOf.TryGetValue(TokenText.PieceOfByte(b), out var id)) return null;
            result.Add(id);
        }
        return result;
    }

    /// <summary>A character trie of the pieces, for all pieces starting at a position, shortest first.</summary>
    sealed class Trie
    {
        readonly List<Dictionary<char, int>?> _children = [null];
        readonly List<int> _idAt = [-1];

        public void Add(string piece, int id)
        {
            int node = 0;
            foreach (var c in piece)
            {
                var children = _children[node] ??= new Dictionary<char, int>();
                if (!children.TryGetValue(c, out var child))
                {
                    child = _children.Count;
                    children[c] = child;
                    _children.Add(null);
                    _idAt.Add(-1);
                }
                node = child;
            }
            if (_idAt[node] < 0 && piece.Length > 0) _idAt[node] = id;
        }

        public void PrefixesAt(string text, int start, List<(int Length, int Id)> matches)
        {
            matches.Clear();
            int node = 0;
            for (int i = start; i < text.Length; i++)
            {
                if (_children[node] is not { } children || !children.TryGetValue(text[i], out node)) return;
                if (_idAt[node] >= 0 && !char.IsHighSurrogate(text[i])) matches.Add((i + 1 - start, _idAt[node]));
            }
        }
    }
}
