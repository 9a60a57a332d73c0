using System.Text;
using System.Text.Json.Nodes;

namespace Pargs.Tokenizers;

/// <summary>How a SentencePiece-style tokenizer.json turns text into "▁"-words before BPE.</summary>
/// <param name="Prepend">Normalizer Prepend: always put this before a non-empty segment (Llama-2: "▁").</param>
/// <param name="ReplaceSpaces">Spaces become "▁" (normalizer Replace or Metaspace).</param>
/// <param name="MetaspacePrepend">Metaspace prepend_scheme: "always", "first" or "never" (adds "▁" only when the text does not start with one).</param>
/// <param name="MetaspaceSplit">Metaspace split: cut before every "▁" so each word is merged alone.</param>
public sealed record SentencePieceBpeOptions(string? Prepend, bool ReplaceSpaces, string MetaspacePrepend = "never",
    bool MetaspaceSplit = false, bool IgnoreMerges = false, bool FuseUnknown = true, bool ByteFallback = true);

/// <summary>
/// SentencePiece-converted BPE as HF writes it for Llama-2 and Mistral: spaces as "▁", a dummy-prefix "▁",
/// characters missing from the vocabulary as "&lt;0xAB&gt;" byte pieces (byte_fallback), and rank-ordered merges.
/// </summary>
public sealed class SentencePieceBpeTokenizer : ITokenizer, IAddsDummyPrefix
{
    readonly string?[] _pieces;
    readonly Dictionary<string, int> _idOf;
    readonly BpeMerges _merges;
    readonly Dictionary<int, AddedToken> _added;
    readonly AddedTokenSplitter _splitter;
    readonly SentencePieceBpeOptions _options;
    readonly int?[] _idOfByte = new int?[256];
    readonly int? _unknownId;
    readonly byte[][] _bytes;
    readonly (JsonNode? Normalizer, JsonNode? PreTokenizer, JsonNode? PostProcessor, JsonNode? Decoder) _source;

    internal SentencePieceBpeTokenizer(string?[] pieces, BpeMerges merges, IReadOnlyList<AddedToken> added,
        SentencePieceBpeOptions options, string? unknownPiece, int? bosId, int? eosId,
        (JsonNode? Normalizer, JsonNode? PreTokenizer, JsonNode? PostProcessor, JsonNode? Decoder) source)
    {
        int size = Math.Max(pieces.Length, added.Count == 0 ? 0 : added.Max(t => t.Id) + 1);
        _pieces = new string?[size];
        pieces.CopyTo(_pieces, 0);
        _idOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < pieces.Length; id++) if (pieces[id] is string p) _idOf.TryAdd(p, id);
        (_merges, _options, BosId, EosId, _source) = (merges, options, bosId, eosId, source);
        _added = added.ToDictionary(t => t.Id);
        _splitter = new AddedTokenSplitter(added);
        for (int b = 0; b < 256; b++) _idOfByte[b] = _idOf.TryGetValue(TokenText.PieceOfByte(b), out var id) ? id : null;
        _unknownId = unknownPiece is not null && _idOf.TryGetValue(unknownPiece, out var u) ? u : null;
        _bytes = new byte[size][];
        for (int id = 0; id < size; id++)
        {
            _bytes[id] = _added.TryGetValue(id, out var a) ? (a.Special ? [] : Encoding.UTF8.GetBytes(a.Content))
                : _pieces[id] is string s ? TokenText.SentencePieceBytes(s)
                : [];
        }
    }

    public int VocabSize => _pieces.Length;
    public int? BosId { get; }
    public int? EosId { get; }
    public bool AddsDummyPrefix => _options.Prepend is not null || _options.MetaspacePrepend != "never";

    public int[] Encode(string text, bool addBos = false)
    {
        var ids = new List<int>();
        if (addBos && BosId is int bos) ids.Add(bos);
        bool first = true;
        foreach (var (segment, token) in _splitter.Split(text))
        {
            if (token is not null) { ids.Add(token.Id); first = false; continue; }
            foreach (var word in Words(segment, first)) ids.AddRange(EncodeWord(word));
            first = false;
        }
        return ids.ToArray();
    }

    /// <summary>HF's normalizer then Metaspace pre-tokenizer, for one segment between added tokens.</summary>
    IEnumerable<string> Words(string segment, bool atTextStart)
    {
        if (segment.Length == 0) return [];
        var s = _options.Prepend + segment;
        if (_options.ReplaceSpaces) s = s.Replace(' ', TokenText.SpaceMarker);
        bool metaspacePrepends = _options.MetaspacePrepend == "always" || (_options.MetaspacePrepend == "first" && atTextStart);
        if (metaspacePrepends && s[0] != TokenText.SpaceMarker) s = TokenText.SpaceMarker + s;
        if (!_options.MetaspaceSplit) return [s];
        var words = new List<string>(); // cut before each "▁" (HF's MergedWithNext)
        int start = 0;
        for (int i = 1; i < s.Length; i++)
        {
            if (s[i] == TokenText.SpaceMarker) { words.Add(s[start..i]); start = i; }
        }
        words.Add(s[start..]);
        return words;
    }

    List<int> EncodeWord(string word)
    {
        var symbols = new List<int>();
        if (_options.IgnoreMerges && _idOf.TryGetValue(word, out var whole)) { symbols.Add(whole); return symbols; }
        bool lastWasUnknown = false;
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in word.EnumerateRunes())
        {
            if (_idOf.TryGetValue(rune.ToString(), out var id)) { symbols.Add(id); lastWasUnknown = false; continue; }
            int n = rune.EncodeToUtf8(utf8);
            bool allBytes = _options.ByteFallback;
            for (int i = 0; i < n; i++) allBytes &= _idOfByte[utf8[i]] is not null;
            if (allBytes)
            {
                for (int i = 0; i < n; i++) symbols.Add(_idOfByte[utf8[i]]!.Value);
                lastWasUnknown = false;
                continue;
            }
            if (_unknownId is not int unk)
                throw new PargsException($"tokenizer.json: character U+{rune.Value:X4} has no piece, no byte pieces and model.unk_token is not set.");
            if (!(lastWasUnknown && _options.FuseUnknown)) symbols.Add(unk);
            lastWasUnknown = true;
        }
        _merges.Apply(symbols);
        return symbols;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecial = true) =>
        TokenText.Decode(this, ids, skipSpecial, stripDummyPrefix: AddsDummyPrefix,
            id => _added.TryGetValue(id, out var a) ? a.Content : _pieces[id] ?? "");

    public byte[] TokenBytes(int id) => (byte[])_bytes[CheckId(id)].Clone();

    public bool IsSpecial(int id) => _added.TryGetValue(CheckId(id), out var a) && a.Special;

    int CheckId(int id) => id >= 0 && id < _pieces.Length ? id
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {_pieces.Length}");

    /// <summary>Writes back the vocabulary, merges in rank order, added tokens and the pipeline it was read with.</summary>
    public void SaveTokenizerJson(string path)
    {
        var merges = _merges.InRankOrder.Select(m => (_pieces[m.Left]!, _pieces[m.Right]!));
        var model = TokenizerJsonWriter.BpeModel(_pieces, merges, _unknownId is int u ? _pieces[u] : null,
            byteFallback: _options.ByteFallback, fuseUnk: _options.FuseUnknown, ignoreMerges: _options.IgnoreMerges);
        TokenizerJsonWriter.Write(path, _added.Values, _source.Normalizer, _source.PreTokenizer, _source.PostProcessor,
            _source.Decoder, model);
    }
}
