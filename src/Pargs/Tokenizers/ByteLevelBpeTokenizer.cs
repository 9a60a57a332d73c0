using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Pargs.Tokenizers;

/// <summary>How a byte-level tokenizer.json cuts and normalizes text before BPE.</summary>
/// <param name="Splits">Pre-tokenizer regexes applied in order; each match and each gap between matches becomes a piece (HF's "Isolated").</param>
/// <param name="AddPrefixSpace">ByteLevel's add_prefix_space: a space before text that does not start with one.</param>
/// <param name="Nfc">The normalizer is NFC (Qwen2).</param>
/// <param name="IgnoreMerges">A pre-token that is itself in the vocabulary is taken whole (Llama-3).</param>
public sealed record ByteLevelBpeOptions(IReadOnlyList<Regex> Splits, bool AddPrefixSpace = false, bool Nfc = false,
    bool IgnoreMerges = false)
{
    /// <summary>GPT-2's pre-tokenizer regex, which HF's ByteLevel pre-tokenizer uses when use_regex is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
}

/// <summary>
/// Byte-level BPE as GPT-2, Qwen2 and Llama-3 use it: text → added tokens cut out → regex pre-tokens → UTF-8
/// bytes mapped to GPT-2's printable alphabet → rank-ordered merges. Every byte is in the vocabulary, so
/// nothing is unknown.
/// </summary>
public sealed class ByteLevelBpeTokenizer : ITokenizer
{
    readonly string?[] _tokens;                  // vocabulary strings by id (byte-level alphabet); null in gaps
    readonly Dictionary<string, int> _idOf;
    readonly BpeMerges _merges;
    readonly Dictionary<int, AddedToken> _added;
    readonly AddedTokenSplitter _splitter;
    readonly ByteLevelBpeOptions _options;
    readonly byte[][] _bytes;
    readonly (JsonNode? Normalizer, JsonNode? PreTokenizer, JsonNode? PostProcessor, JsonNode? Decoder) _source;
    readonly Dictionary<string, int[]> _wordCache = new(StringComparer.Ordinal);
    readonly Lock _cacheLock = new();

    internal ByteLevelBpeTokenizer(string?[] tokens, BpeMerges merges, IReadOnlyList<AddedToken> added,
        ByteLevelBpeOptions options, int? bosId, int? eosId,
        (JsonNode? Normalizer, JsonNode? PreTokenizer, JsonNode? PostProcessor, JsonNode? Decoder) source)
    {
        int size = Math.Max(tokens.Length, added.Count == 0 ? 0 : added.Max(t => t.Id) + 1);
        _tokens = new string?[size];
        tokens.CopyTo(_tokens, 0);
        _idOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++) if (tokens[id] is string t) _idOf.TryAdd(t, id);
        (_merges, _options, BosId, EosId, _source) = (merges, options, bosId, eosId, source);
        _added = added.ToDictionary(t => t.Id);
        _splitter = new AddedTokenSplitter(added);
        _bytes = new byte[size][];
        for (int id = 0; id < size; id++)
        {
            _bytes[id] = _added.TryGetValue(id, out var a) ? (a.Special ? [] : Encoding.UTF8.GetBytes(a.Content))
                : _tokens[id] is string s ? ByteLevelAlphabet.TryDecode(s) ?? Encoding.UTF8.GetBytes(s)
                : [];
        }
    }

    public int VocabSize => _tokens.Length;
    public int? BosId { get; }
    public int? EosId { get; }
    public IReadOnlyCollection<AddedToken> AddedTokens => _added.Values;

    public int[] Encode(string text, bool addBos = false)
    {
        var ids = new List<int>();
        if (addBos && BosId is int bos) ids.Add(bos);
        foreach (var (segment, token) in _splitter.Split(text))
        {
            if (token is not null) { ids.Add(token.Id); continue; }
            var normalized = _options.Nfc ? segment.Normalize(NormalizationForm.FormC) : segment;
            if (_options.AddPrefixSpace && !normalized.StartsWith(' ')) normalized = " " + normalized;
            foreach (var word in PreTokenize(normalized)) ids.AddRange(EncodeWord(word));
        }
        return ids.ToArray();
    }

    IEnumerable<string> PreTokenize(string text)
    {
        IEnumerable<string> pieces = [text];
        foreach (var regex in _options.Splits) pieces = pieces.SelectMany(p => SplitIsolated(regex, p));
        return pieces;
    }

    static IEnumerable<string> SplitIsolated(Regex regex, string text)
    {
        int at = 0;
        foreach (Match m in regex.Matches(text))
        {
            if (m.Length == 0) continue;
            if (m.Index > at) yield return text[at..m.Index];
            yield return m.Value;
            at = m.Index + m.Length;
        }
        if (at < text.Length) yield return text[at..];
    }

    int[] EncodeWord(string word)
    {
        var mapped = ByteLevelAlphabet.Encode(Encoding.UTF8.GetBytes(word));
        lock (_cacheLock) { if (_wordCache.TryGetValue(mapped, out var cached)) return cached; }
        int[] ids;
        if (_options.IgnoreMerges && _idOf.TryGetValue(mapped, out var whole)) ids = [whole];
        else
        {
            var symbols = new List<int>(mapped.Length);
            foreach (var c in mapped)
            {
                symbols.Add(_idOf.TryGetValue(c.ToString(), out var id) ? id
                    : throw new PargsException($"byte-level vocabulary has no token for byte 0x{ByteLevelAlphabet.CharToByte[c]:X2} ('{c}'); expected all 256 byte tokens."));
            }
            _merges.Apply(symbols);
            ids = symbols.ToArray();
        }
        lock (_cacheLock)
        {
            if (_wordCache.Count > 50_000) _wordCache.Clear();
            _wordCache[mapped] = ids;
        }
        return ids;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecial = true) =>
        TokenText.Decode(this, ids, skipSpecial, stripDummyPrefix: false, id => _added[id].Content);

    public byte[] TokenBytes(int id) => (byte[])_bytes[CheckId(id)].Clone();

    public bool IsSpecial(int id) => _added.TryGetValue(CheckId(id), out var a) && a.Special;

    int CheckId(int id) => id >= 0 && id < _tokens.Length ? id
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {_tokens.Length}");

    /// <summary>
    /// A standard byte-level tokenizer.json: vocab, merges in rank order, added tokens, and the normalizer,
    /// pre-tokenizer, post-processor and decoder this tokenizer was read with (GPT-2's ByteLevel ones when
    /// it was built directly).
    /// </summary>
    public void SaveTokenizerJson(string path)
    {
        var merges = _merges.InRankOrder.Select(m => (_tokens[m.Left]!, _tokens[m.Right]!));
        var model = TokenizerJsonWriter.BpeModel(_tokens, merges, null, byteFallback: false, fuseUnk: false,
            ignoreMerges: _options.IgnoreMerges);
        var byteLevel = new JsonObject
        {
            ["type"] = "ByteLevel", ["add_prefix_space"] = _options.AddPrefixSpace, ["trim_offsets"] = true, ["use_regex"] = true,
        };
        TokenizerJsonWriter.Write(path, _added.Values, _source.Normalizer,
            _source.PreTokenizer ?? byteLevel, _source.PostProcessor, _source.Decoder ?? byteLevel.DeepClone(), model);
    }
}
