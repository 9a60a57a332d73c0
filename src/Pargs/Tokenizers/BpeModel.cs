using System.Text;

namespace Pargs.Tokenizers;

/// <summary>
/// The BPE model: each character of a piece becomes its vocabulary id (or, with byte_fallback, its UTF-8
/// bytes as "&lt;0xAB&gt;" pieces, or the unknown token, fused with a neighbouring unknown when fuse_unk),
/// then rank-ordered merges; with ignore_merges a piece that is itself in the vocabulary is taken whole.
/// A character with no id, no byte pieces and no unk_token is dropped, as the Rust library drops it.
/// </summary>
internal sealed class BpeModel : TokenizerModel
{
    // The vocabulary as one UTF-8 table when it is one token per id 0, 1, 2… (every real file); otherwise (gaps, or two
    // texts for one id) the token array and the dictionary as given. WHY: a string and a Dictionary entry per token held
    // ~11 MiB of Qwen's 152k-token vocabulary for the whole run (docs/benchmarks.md, "Resident memory, fourth pass").
    readonly TokenStringTable? _table;
    readonly string?[]? _tokens;
    readonly Dictionary<string, int>? _vocab;
    readonly Dictionary<int, int> _idOfRune = new();
    readonly int[] _idOfByte = new int[256];
    readonly BpeMerges _merges;
    readonly int? _unknownId;
    readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    readonly Lock _cacheLock = new();

    public BpeModel(string?[] tokens, Dictionary<string, int> vocab, BpeMerges merges, string? unknownToken,
        bool fuseUnknown, bool byteFallback, bool ignoreMerges)
    {
        (_merges, FuseUnknown, ByteFallback, IgnoreMerges, UnknownToken) = (merges, fuseUnknown, byteFallback, ignoreMerges, unknownToken);
        if (vocab.Count == tokens.Length && TokenStringTable.CanHold(tokens) && vocab.All(e => tokens[e.Value] == e.Key))
            _table = new TokenStringTable(tokens!, "tokenizer.json: model.vocab");
        else
            (_tokens, _vocab) = (tokens, vocab);
        foreach (var (token, id) in vocab)
        {
            if (token.Length is 1 or 2 && Rune.TryGetRuneAt(token, 0, out var r) && r.Utf16SequenceLength == token.Length)
                _idOfRune[r.Value] = id;
        }
        for (int b = 0; b < 256; b++) _idOfByte[b] = vocab.TryGetValue(TokenText.PieceOfByte(b), out var id) ? id : -1;
        _unknownId = unknownToken is not null && vocab.TryGetValue(unknownToken, out var u) ? u : null;
        _wordsAtSpaceMarker = !ignoreMerges && _idOfRune.ContainsKey(TokenText.SpaceMarker) && merges.InRankOrder.All(m =>
            tokens[m.Left] is { } left && tokens[m.Right] is { } right
            && left.IndexOf(TokenText.SpaceMarker, 1) < 0 && !right.Contains(TokenText.SpaceMarker));
    }

    /// <summary>
    /// No merge joins across a "▁" (no merge's right part holds one, no left part past its first character) and "▁" is
    /// its own symbol: then the merges of a piece split before each "▁" never reach across the split, and the piece's ids
    /// are its words' ids one after another — exactly. A SentencePiece-style tokenizer.json with no pre-tokenizer hands
    /// over a whole text as one piece, which without the split is merged from scratch every time (a reward server scores
    /// texts that grow by a token per step); split, every word but the last comes from the cache.
    /// </summary>
    readonly bool _wordsAtSpaceMarker;

    public BpeMerges Merges => _merges;
    public string? UnknownToken { get; }
    public bool FuseUnknown { get; }
    public bool ByteFallback { get; }
    public bool IgnoreMerges { get; }
    public override int Size => _table?.Count ?? _tokens!.Length;

    public override string? IdToToken(int id)
    {
        if (_table is not null) return (uint)id < (uint)_table.Count ? _table.StringOf(id) : null;
        return id >= 0 && id < _tokens!.Length ? _tokens[id] : null;
    }

    public override bool TryGetId(string token, out int id) => _table is not null ? _table.TryGetId(token.AsSpan(), out id) : _vocab!.TryGetValue(token, out id);

    public override void Tokenize(string word, List<int> ids)
    {
        if (word.Length == 0) return;
        if (IgnoreMerges && TryGetId(word, out var whole)) { ids.Add(whole); return; }
        if (_wordsAtSpaceMarker && word.IndexOf(TokenText.SpaceMarker, 1) > 0)
        {
            int start = 0;
            for (int at = word.IndexOf(TokenText.SpaceMarker, 1); at > 0; at = word.IndexOf(TokenText.SpaceMarker, at + 1))
            {
                TokenizeWord(word[start..at], ids);
                start = at;
            }
            TokenizeWord(word[start..], ids);
            return;
        }
        TokenizeWord(word, ids);
    }

    void TokenizeWord(string word, List<int> ids)
    {
        // The Rust library caches words shorter than 256 characters; long ones are merged every time.
        bool cacheable = word.Length < 256;
        if (cacheable)
        {
            lock (_cacheLock)
            {
                if (_cache.TryGetValue(word, out var cached)) { ids.AddRange(cached); return; }
            }
        }
        var symbols = Symbols(word);
        _merges.Apply(symbols);
        if (cacheable)
        {
            var result = symbols.ToArray();
            lock (_cacheLock)
            {
                if (_cache.Count > 100_000) _cache.Clear();
                _cache[word] = result;
            }
        }
        ids.AddRange(symbols);
    }

    List<int> Symbols(string word)
    {
        var symbols = new List<int>(word.Length);
        bool pendingUnknown = false;
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in word.EnumerateRunes())
        {
            if (_idOfRune.TryGetValue(rune.Value, out var id))
            {
                if (pendingUnknown) { symbols.Add(_unknownId!.Value); pendingUnknown = false; }
                symbols.Add(id);
                continue;
            }
            if (ByteFallback)
            {
                int n = rune.EncodeToUtf8(utf8);
                bool all = true;
                for (int i = 0; i < n; i++) all &= _idOfByte[utf8[i]] >= 0;
                if (all)
                {
                    // Byte pieces do not flush a pending unknown, as in the Rust library.
                    for (int i = 0; i < n; i++) symbols.Add(_idOfByte[utf8[i]]);
                    continue;
                }
            }
            if (UnknownToken is null) continue;
            if (_unknownId is null) throw new PargsException($"tokenizer.json: model.unk_token \"{UnknownToken}\" is not in model.vocab.");
            if (pendingUnknown && !FuseUnknown) symbols.Add(_unknownId.Value);
            pendingUnknown = true;
        }
        if (pendingUnknown) symbols.Add(_unknownId!.Value);
        return symbols;
    }
}
