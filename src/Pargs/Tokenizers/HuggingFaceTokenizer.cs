using System.Text;
using System.Text.Json.Nodes;

namespace Pargs.Tokenizers;

/// <summary>The parts of a tokenizer.json, each optional except the model, in the order text meets them.</summary>
internal sealed record TokenizerPipeline(
    IReadOnlyList<AddedToken> AddedTokens,
    TextNormalizer? Normalizer,
    PreTokenizer? PreTokenizer,
    TokenizerModel Model,
    PostProcessor? PostProcessor,
    TokenDecoder? Decoder,
    Func<JsonObject> Source);

/// <summary>What the configuration files beside tokenizer.json say (see <see cref="TokenizerConfig"/>).</summary>
internal sealed record SpecialTokenSettings(int? BosId, int? EosId, bool CleanUpTokenizationSpaces, bool PrependBosWithoutTemplate)
{
    /// <summary>A post-processor the configuration puts in place of the file's (transformers' Llama/Gemma classes).</summary>
    public PostProcessor? PostProcessor { get; init; }

    /// <summary>The tokenizer_config.json read beside the file, written back beside a saved copy.</summary>
    public System.Text.Json.Nodes.JsonObject? Config { get; init; }
}

/// <summary>Ids with their token type ids (0 for the first sequence, 1 for the second where the template says so).</summary>
public sealed record TokenizerEncoding(int[] Ids, int[] TypeIds);

/// <summary>
/// A tokenizer.json run as Hugging Face's Rust library runs it: added tokens cut out of the raw text, the
/// normalizer on each stretch between them (then added tokens marked "normalized" cut out), the
/// pre-tokenizer, the model on each piece, the post-processor's special tokens; decoding maps ids to token
/// strings (added tokens as their content) and runs the decoder. Subclasses name the model family.
/// </summary>
public abstract class HuggingFaceTokenizer : ITokenizer, IAddsDummyPrefix
{
    readonly TokenizerPipeline _pipeline;
    readonly SpecialTokenSettings _settings;
    readonly Dictionary<int, AddedToken> _added = new();
    readonly AddedTokenSplitter _rawSplitter;
    readonly AddedTokenSplitter _normalizedSplitter;
    readonly TokenByteTable _bytes;
    readonly bool _byteLevel;

    private protected HuggingFaceTokenizer(TokenizerPipeline pipeline, SpecialTokenSettings settings)
    {
        (_pipeline, _settings) = (settings.PostProcessor is { } replacement ? pipeline with { PostProcessor = replacement } : pipeline, settings);
        pipeline = _pipeline;
        foreach (var t in pipeline.AddedTokens) _added[t.Id] = t;
        _rawSplitter = new AddedTokenSplitter(pipeline.AddedTokens.Where(t => !t.Normalized));
        // Tokens marked "normalized" are matched in normalized text, so their own content is normalized first.
        _normalizedSplitter = new AddedTokenSplitter(pipeline.AddedTokens.Where(t => t.Normalized)
            .Select(t => pipeline.Normalizer is { } n ? t with { Content = n.Normalize(t.Content) } : t));
        VocabSize = Math.Max(pipeline.Model.Size, pipeline.AddedTokens.Count == 0 ? 0 : pipeline.AddedTokens.Max(t => t.Id) + 1);
        _byteLevel = pipeline.Decoder is ByteLevelDecoder || (pipeline.Decoder is null && pipeline.PreTokenizer is ByteLevelPreTokenizer)
            || Flatten(pipeline.PreTokenizer).Any(p => p is ByteLevelPreTokenizer);
        _bytes = new TokenByteTable(VocabSize, BytesOf);
        AddsDummyPrefix = DummyPrefix(pipeline);
    }

    public int VocabSize { get; }
    public int? BosId => _settings.BosId;
    public int? EosId => _settings.EosId;
    public bool AddsDummyPrefix { get; }

    /// <summary>Whether the post-processor puts special tokens around a single sequence.</summary>
    public bool AddsSpecialTokens => _pipeline.PostProcessor?.SingleSpecials is { } s && (s.Before.Count > 0 || s.After.Count > 0);
    public IReadOnlyCollection<AddedToken> AddedTokens => _added.Values;

    /// <summary>Whether <see cref="Decode"/> applies transformers' clean_up_tokenization_spaces (from tokenizer_config.json).</summary>
    public bool CleanUpTokenizationSpaces => _settings.CleanUpTokenizationSpaces;

    /// <summary>
    /// Ids of <paramref name="text"/>. <paramref name="addBos"/> means "add the special tokens": those the
    /// post-processor adds to a single sequence (BOS for Llama, none for Qwen3, [CLS] … [SEP] for BERT); a
    /// bare tokenizer.json without a template or configuration (as Pargs saves GPT-2-style models) gets the
    /// BOS its model config names.
    /// </summary>
    public int[] Encode(string text, bool addBos = false) => Encode(text, null, addBos).Ids;

    /// <summary>The encoding of <paramref name="text"/> (and <paramref name="pair"/>), as the reference's <c>encode(text, pair, add_special_tokens)</c>.</summary>
    public TokenizerEncoding Encode(string text, string? pair, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = new List<EncodingPart> { EncodeSequence(text, 0) };
        if (pair is not null) parts.Add(EncodeSequence(pair, 1));
        if (_pipeline.PostProcessor is { } processor) parts = processor.Process(parts, addSpecialTokens);
        if (addSpecialTokens && _settings.PrependBosWithoutTemplate && BosId is int bos && !AddsSpecialTokens)
            parts.Insert(0, new EncodingPart([bos], [0]));
        var ids = new List<int>();
        var types = new List<int>();
        foreach (var p in parts) { ids.AddRange(p.Ids); types.AddRange(p.TypeIds); }
        return new TokenizerEncoding(ids.ToArray(), types.ToArray());
    }

    EncodingPart EncodeSequence(string text, int typeId)
    {
        var ids = new List<int>();
        int offset = 0;
        foreach (var (segment, token) in _rawSplitter.Split(text))
        {
            if (token is not null) ids.Add(token.Id);
            else
            {
                var normalized = _pipeline.Normalizer is { } n ? n.Normalize(segment) : segment;
                bool first = true;
                foreach (var (piece, normalizedToken) in _normalizedSplitter.Split(normalized))
                {
                    if (normalizedToken is not null) ids.Add(normalizedToken.Id);
                    else if (piece.Length > 0) EncodePiece(new PreToken(piece, offset == 0 && first), ids);
                    first = false;
                }
            }
            offset += segment.Length;
        }
        return new EncodingPart(ids, Enumerable.Repeat(typeId, ids.Count).ToList());
    }

    void EncodePiece(PreToken piece, List<int> ids)
    {
        var pieces = new List<PreToken> { piece };
        _pipeline.PreTokenizer?.PreTokenize(pieces);
        foreach (var p in pieces) _pipeline.Model.Tokenize(p.Text, ids);
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecial = true)
    {
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (_added.TryGetValue(CheckId(id), out var added))
            {
                if (!(skipSpecial && added.Special)) tokens.Add(added.Content);
            }
            else if (_pipeline.Model.IdToToken(id) is string token) tokens.Add(token);
        }
        string text = _pipeline.Decoder is { } decoder ? string.Concat(decoder.DecodeChain(tokens)) : string.Join(" ", tokens);
        return CleanUpTokenizationSpaces ? CleanUp.TokenizationSpaces(text) : text;
    }

    public byte[] TokenBytes(int id) => _bytes[CheckId(id)].ToArray();

    public bool IsSpecial(int id) => _added.TryGetValue(CheckId(id), out var a) && a.Special;

    /// <summary>
    /// Writes the tokenizer.json this tokenizer was read from, and the tokenizer_config.json that was beside it
    /// (BOS/EOS, add_bos_token, clean-up), so the copy loads back to the same ids and the same special tokens.
    /// </summary>
    public void SaveTokenizerJson(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        File.WriteAllText(path, _pipeline.Source().ToJsonString(TokenizerJsonWriter.Options));
        if (_settings.Config is { } config)
            File.WriteAllText(Path.Combine(dir, TokenizerConfig.FileName), config.ToJsonString(TokenizerJsonWriter.Options));
    }

    int CheckId(int id) => id >= 0 && id < VocabSize ? id
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {VocabSize}");

    byte[] BytesOf(int id)
    {
        if (_added.TryGetValue(id, out var a)) return a.Special ? [] : Encoding.UTF8.GetBytes(a.Content);
        if (_pipeline.Model.IdToToken(id) is not string token) return [];
        if (_byteLevel) return ByteLevelAlphabet.TryDecode(token) ?? Encoding.UTF8.GetBytes(token);
        if (_pipeline.Model is WordPieceModel wp)
            return Encoding.UTF8.GetBytes(token.StartsWith(wp.ContinuingSubwordPrefix, StringComparison.Ordinal)
                ? token[wp.ContinuingSubwordPrefix.Length..] : " " + token);
        return TokenText.SentencePieceBytes(token);
    }

    static bool DummyPrefix(TokenizerPipeline pipeline) =>
        pipeline.Model is WordPieceModel
        || Flatten(pipeline.PreTokenizer).Any(p => p is MetaspacePreTokenizer { Prepends: true })
        || FlattenNormalizers(pipeline.Normalizer).Any(n => n is PrependNormalizer { Prepend: "▁" });

    internal static IEnumerable<PreTokenizer> Flatten(PreTokenizer? p) => p switch
    {
        null => [],
        SequencePreTokenizer s => s.Items.SelectMany(Flatten),
        _ => [p],
    };

    static IEnumerable<TextNormalizer> FlattenNormalizers(TextNormalizer? n) => n switch
    {
        null => [],
        SequenceNormalizer s => s.Items.SelectMany(FlattenNormalizers),
        _ => [n],
    };
}

/// <summary>Byte-level BPE as GPT-2, Qwen2/3, Llama-3 and gpt-oss use it.</summary>
public sealed class ByteLevelBpeTokenizer : HuggingFaceTokenizer
{
    internal ByteLevelBpeTokenizer(TokenizerPipeline pipeline, SpecialTokenSettings settings) : base(pipeline, settings) { }
}

/// <summary>SentencePiece-style BPE ("▁" for spaces, byte fallback) as Llama-2, Mistral and Gemma use it.</summary>
public sealed class SentencePieceBpeTokenizer : HuggingFaceTokenizer
{
    internal SentencePieceBpeTokenizer(TokenizerPipeline pipeline, SpecialTokenSettings settings) : base(pipeline, settings) { }
}

/// <summary>WordPiece as BERT and DistilBERT use it.</summary>
public sealed class WordPieceTokenizer : HuggingFaceTokenizer
{
    internal WordPieceTokenizer(TokenizerPipeline pipeline, SpecialTokenSettings settings) : base(pipeline, settings) { }
}

/// <summary>Unigram as DeBERTa-v3, T5 and ALBERT use it.</summary>
public sealed class UnigramTokenizer : HuggingFaceTokenizer
{
    internal UnigramTokenizer(TokenizerPipeline pipeline, SpecialTokenSettings settings) : base(pipeline, settings) { }
}
