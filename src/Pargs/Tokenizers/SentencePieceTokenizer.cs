using System.Text;

namespace Pargs.Tokenizers;

/// <summary>
/// A SentencePiece BPE vocabulary with scores, as llama2.c's tokenizer.bin and GGUF's
/// <c>tokenizer.ggml.*</c> carry it. Encoding is llama2.c run.c <c>encode</c> exactly: dummy-prefix space,
/// one piece per code point (byte pieces for unknown ones), then repeatedly merge the adjacent pair whose
/// concatenation is the highest-scoring piece (leftmost on ties).
/// </summary>
public sealed class SentencePieceTokenizer : ITokenizer, IAddsDummyPrefix
{
    // GGUF tokenizer.ggml.token_type values (SentencePiece's ModelProto.SentencePiece.Type).
    public const int NormalType = 1, UnknownType = 2, ControlType = 3, UserDefinedType = 4, UnusedType = 5, ByteType = 6;

    // Pieces in one char table, found by id and by text (first id wins on duplicates). A token's bytes are derived from
    // its piece when asked (TokenBytes), not kept beside it: both copies of a 128k-token vocabulary would be held for the
    // whole run (docs/benchmarks.md, "Resident memory, fourth pass").
    readonly TokenStringTable _pieces;
    readonly float[] _scores;
    readonly int[] _types;
    readonly int[] _idOfByte = new int[256];

    SentencePieceTokenizer(string[] pieces, float[] scores, int[] types, int? bosId, int? eosId)
    {
        (_pieces, _scores, _types, BosId, EosId) = (new TokenStringTable(pieces, "SentencePiece vocabulary"), scores, types, bosId, eosId);
        Array.Fill(_idOfByte, -1);
        for (int id = 0; id < pieces.Length; id++)
        {
            if (types[id] == ByteType && TokenText.ByteOfPiece(pieces[id]) is int b && _idOfByte[b] < 0) _idOfByte[b] = id;
        }
        UnknownId = Array.IndexOf(types, UnknownType) is int u && u >= 0 ? u : null;
    }

    public int VocabSize => _pieces.Count;
    public int? BosId { get; }
    public int? EosId { get; }
    public int? UnknownId { get; }
    public bool AddsDummyPrefix => true;
    /// <summary>The pieces by id (each string built when read).</summary>
    public IReadOnlyList<string> Pieces => _pieces.AsStrings();
    public IReadOnlyList<float> Scores => _scores;
    public IReadOnlyList<int> TokenTypes => _types;

    /// <summary>
    /// From a GGUF-style vocabulary: pieces with "▁" for spaces, one score each, optional token types
    /// (inferred when null: "&lt;unk&gt;" unknown, BOS/EOS control, "&lt;0xAB&gt;" byte, the rest normal).
    /// BOS/EOS default to the pieces "&lt;s&gt;" and "&lt;/s&gt;" when present.
    /// </summary>
    public static SentencePieceTokenizer FromVocabulary(string[] pieces, float[] scores, int[]? tokenTypes, int? bosId, int? eosId)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.Length != pieces.Length)
            throw new PargsException($"SentencePiece vocabulary: {pieces.Length} pieces but {scores.Length} scores; expected one score per piece.");
        if (tokenTypes is not null && tokenTypes.Length != pieces.Length)
            throw new PargsException($"SentencePiece vocabulary: {pieces.Length} pieces but {tokenTypes.Length} token types; expected one type per piece.");
        bosId ??= IndexOrNull(pieces, "<s>");
        eosId ??= IndexOrNull(pieces, "</s>");
        foreach (var (name, id) in new[] { ("BOS", bosId), ("EOS", eosId) })
        {
            if (id is int i && (i < 0 || i >= pieces.Length))
                throw new PargsException($"SentencePiece vocabulary: {name} id {i} is outside the vocabulary of {pieces.Length} pieces.");
        }
        var types = tokenTypes is null ? InferTypes(pieces, bosId, eosId) : (int[])tokenTypes.Clone();
        return new SentencePieceTokenizer(pieces, (float[])scores.Clone(), types, bosId, eosId); // the pieces are copied into the table
    }

    /// <summary>
    /// llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes.
    /// Its pieces hold plain spaces (stored here as "▁"); ids 0/1/2 are &lt;unk&gt;, BOS "\n&lt;s&gt;\n" and
    /// EOS "\n&lt;/s&gt;\n", which are named "&lt;s&gt;"/"&lt;/s&gt;" here, as in the GGUF and HF vocabularies.
    /// The vocabulary size is not in the file: it is every token up to the end.
    /// </summary>
    public static SentencePieceTokenizer LoadLlama2c(string tokBinPath)
    {
        if (!File.Exists(tokBinPath)) throw new PargsException($"{tokBinPath}: llama2.c tokenizer file not found.");
        var data = File.ReadAllBytes(tokBinPath);
        var pieces = new List<string>();
        var scores = new List<float>();
        int at = 4;
        if (data.Length < 4) throw new PargsException($"{tokBinPath}: too short for a llama2.c tokenizer (no max_token_length header).");
        while (at < data.Length)
        {
            if (at + 8 > data.Length)
                throw new PargsException($"{tokBinPath}: token {pieces.Count} at byte {at} is truncated; expected float32 score and int32 length.");
            float score = BitConverter.ToSingle(data, at);
            int length = BitConverter.ToInt32(data, at + 4);
            at += 8;
            if (length < 0 || length > data.Length - at) // not at + length: that overflows for lengths near 2^31
                throw new PargsException($"{tokBinPath}: token {pieces.Count} has length {length}, beyond the end of the file.");
            pieces.Add(Encoding.UTF8.GetString(data, at, length).Replace(' ', TokenText.SpaceMarker));
            scores.Add(score);
            at += length;
        }
        if (pieces.Count < 3) throw new PargsException($"{tokBinPath}: {pieces.Count} tokens; expected at least <unk>, BOS and EOS.");
        pieces[1] = "<s>";
        pieces[2] = "</s>";
        return FromVocabulary(pieces.ToArray(), scores.ToArray(), null, 1, 2);
    }

    static int? IndexOrNull(string[] pieces, string piece) => Array.IndexOf(pieces, piece) is int i && i >= 0 ? i : null;

    static int[] InferTypes(string[] pieces, int? bosId, int? eosId)
    {
        var types = new int[pieces.Length];
        for (int id = 0; id < pieces.Length; id++)
        {
            types[id] = id == bosId || id == eosId ? ControlType
                : pieces[id] == "<unk>" ? UnknownType
                : TokenText.ByteOfPiece(pieces[id]) is not null ? ByteType
                : NormalType;
        }
        return types;
    }

    public int[] Encode(string text, bool addBos = false)
    {
        var ids = new List<int>();
        if (addBos && BosId is int bos) ids.Add(bos);
        if (text.Length == 0) return ids.ToArray();

        // Dummy prefix, then one symbol per code point ("▁" stands for every space).
        var symbols = new List<int>();
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in ("▁" + text.Replace(' ', TokenText.SpaceMarker)).EnumerateRunes())
        {
            int n = rune.EncodeToUtf8(utf8);
            if (_pieces.TryGetId(utf8[..n], out var id)) { symbols.Add(id); continue; }
            for (int i = 0; i < n; i++) symbols.Add(ByteFallback(utf8[i]));
        }
        MergeByScore(symbols);
        ids.AddRange(symbols);
        return ids.ToArray();
    }

    int ByteFallback(byte b) =>
        _idOfByte[b] >= 0 ? _idOfByte[b]
        : UnknownId ?? throw new PargsException($"SentencePiece vocabulary has no byte piece {TokenText.PieceOfByte(b)} and no <unk> piece to stand for it.");

    /// <summary>
    /// llama2.c's merge loop — repeatedly merge the adjacent pair whose concatenation is the highest-scoring
    /// piece, leftmost on ties, scores above −1e10 only — with the candidates in a heap keyed by (score,
    /// position) and stale entries skipped when popped. WHY: rescanning every pair after each merge is
    /// quadratic, and a 1 MB prompt line ran for minutes.
    /// </summary>
    void MergeByScore(List<int> symbols)
    {
        int n = symbols.Count;
        if (n < 2) return;
        var ids = symbols.ToArray();
        var next = new int[n];
        var prev = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; alive[i] = true; }
        var queue = new PriorityQueue<(int Position, int Merged), (float Score, int Position)>(n, HighestScoreFirst.Instance);
        void Push(int position)
        {
            int right = next[position];
            if (right < 0) return;
            int merged = PairPiece(ids[position], ids[right]);
            if (merged >= 0 && _scores[merged] > -1e10f) queue.Enqueue((position, merged), (_scores[merged], position));
        }
        for (int i = 0; i + 1 < n; i++) Push(i);
        while (queue.TryDequeue(out var top, out _))
        {
            int at = top.Position;
            if (!alive[at] || next[at] < 0 || PairPiece(ids[at], ids[next[at]]) != top.Merged) continue; // stale
            int right = next[at];
            ids[at] = top.Merged;
            alive[right] = false;
            next[at] = next[right];
            if (next[at] >= 0) prev[next[at]] = at;
            if (prev[at] >= 0) Push(prev[at]);
            Push(at);
        }
        symbols.Clear();
        for (int i = 0; i >= 0; i = next[i]) symbols.Add(ids[i]);
    }

    /// <summary>Higher score first; among equal scores the leftmost position (llama2.c's strict "&gt;" scan).</summary>
    sealed class HighestScoreFirst : IComparer<(float Score, int Position)>
    {
        public static readonly HighestScoreFirst Instance = new();

        public int Compare((float Score, int Position) x, (float Score, int Position) y) =>
            x.Score != y.Score ? y.Score.CompareTo(x.Score) : x.Position.CompareTo(y.Position);
    }

    int PairPiece(int left, int right) => _pieces.TryGetPairId(left, right, out var id) ? id : -1;

    public string Decode(IEnumerable<int> ids, bool skipSpecial = true) =>
        TokenText.Decode(this, ids, skipSpecial, stripDummyPrefix: true, _pieces.StringOf);

    public byte[] TokenBytes(int id) => IsSpecial(id) ? [] : TokenText.SentencePieceBytes(_pieces.Utf8Of(id));

    public bool IsSpecial(int id) => _types[CheckId(id)] is ControlType or UnknownType;

    int CheckId(int id) => id >= 0 && id < _pieces.Count ? id
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {_pieces.Count}");

    /// <summary>
    /// An HF-Llama-style tokenizer.json: SentencePiece BPE with byte fallback, whose merges are derived from
    /// the scores as HF's SentencePieceExtractor does (every split of a piece into two pieces, ordered by the
    /// merged piece's score, highest first).
    /// </summary>
    public void SaveTokenizerJson(string path)
    {
        var merges = new List<(string Left, string Right, float Score, int Merged, int LeftId, int RightId)>();
        var pieces = Pieces.ToArray();
        for (int id = 0; id < pieces.Length; id++)
        {
            if (_types[id] is ControlType or UnknownType) continue;
            var piece = pieces[id];
            for (int cut = 1; cut < piece.Length; cut++)
            {
                if (char.IsLowSurrogate(piece[cut])) continue; // never split a code point
                if (_pieces.TryGetId(piece.AsSpan(0, cut), out var l) && _pieces.TryGetId(piece.AsSpan(cut), out var r))
                    merges.Add((piece[..cut], piece[cut..], _scores[id], id, l, r));
            }
        }
        var ordered = merges.OrderByDescending(m => m.Score).ThenBy(m => m.Merged).ThenBy(m => m.LeftId).ThenBy(m => m.RightId)
            .Select(m => (m.Left, m.Right)).ToList();
        var added = Enumerable.Range(0, pieces.Length).Where(IsSpecial)
            .Select(id => new AddedToken(id, pieces[id], Special: true)).ToList();
        var model = TokenizerJsonWriter.BpeModel(pieces, ordered, UnknownId is int u ? pieces[u] : null,
            byteFallback: true, fuseUnk: true, ignoreMerges: false);
        var (normalizer, decoder) = TokenizerJsonWriter.LlamaSentencePiece();
        var postProcessor = BosId is int bos ? TokenizerJsonWriter.BosTemplate(pieces[bos], bos) : null;
        TokenizerJsonWriter.Write(path, added, normalizer, null, postProcessor, decoder, model);
    }
}
