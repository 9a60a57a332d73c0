using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Tokenizers;

/// <summary>
/// Reads a Hugging Face tokenizer.json: models BPE (byte-level or SentencePiece-style), WordPiece and Unigram,
/// with the normalizers, pre-tokenizers, post-processors and decoders real files use. A part or field that
/// would change the result and that Pargs does not implement is refused with a message naming it. BOS/EOS and
/// decode clean-up come from tokenizer_config.json / generation_config.json beside the file
/// (<see cref="TokenizerConfig"/>).
/// </summary>
public static class TokenizerJson
{
    public static ITokenizer Load(string path) => Load(path, null, null);

    /// <summary>
    /// <paramref name="bosId"/>/<paramref name="eosId"/> (the model's config.json) count where tokenizer_config.json
    /// beside the file does not name the token (see <see cref="TokenizerConfig"/>).
    /// </summary>
    public static ITokenizer Load(string path, int? bosId, int? eosId) => LoadHuggingFace(path, bosId, eosId);

    /// <summary>A tokenizer.json already parsed (e.g. rebuilt from a GGUF vocabulary); <paramref name="source"/> names it in errors.</summary>
    public static ITokenizer FromJson(JsonObject root, string source, int? bosId, int? eosId) => new TokenizerJsonReader(source, root).Read(bosId, eosId);

    /// <summary>As <see cref="FromJson"/> for a tree built for this call alone (a GGUF vocabulary's): the tokenizer may take its model's vocabulary and merges out of it (<see cref="TokenizerJsonReader"/>).</summary>
    internal static ITokenizer FromOwnedJson(JsonObject root, string source, int? bosId, int? eosId) => new TokenizerJsonReader(source, root, ownsRoot: true).Read(bosId, eosId);

    /// <summary>As <see cref="Load(string, int?, int?)"/>, typed: pair encoding and token type ids are on the result.</summary>
    public static HuggingFaceTokenizer LoadHuggingFace(string path, int? bosId = null, int? eosId = null)
    {
        if (!File.Exists(path)) throw new PargsException($"{path}: tokenizer.json not found.");
        // The checked reader: strict UTF-8, depth and size bounds, lone-surrogate escapes and syntax errors as one line.
        JsonObject root = Pargs.Json.CheckedJson.ReadFile(path, Pargs.Json.CheckedJsonLimits.Large).AsObject();
        try
        {
            return new TokenizerJsonReader(path, root, ownsRoot: true).Read(bosId, eosId);
        }
        catch (ArgumentException e)
        {
            // System.Text.Json reports a property name given twice only when the object is first read.
            throw new PargsException($"{path}: malformed JSON object: {e.Message}", e);
        }
    }
}

/// <summary>
/// Builds the pipeline parts of one tokenizer.json; every error names the file and the JSON path. The tokenizer keeps
/// the tree to save it again (<see cref="HuggingFaceTokenizer.SaveTokenizerJson"/>). With <paramref name="ownsRoot"/>
/// (a tree parsed or built for this reader alone), a BPE model's vocabulary and merges are taken out of the kept tree and
/// written back from the model's own tables when saving, where those spell them exactly (ids 0, 1, 2… in file order,
/// merges in one form without repeats). WHY: the tree's 150k–280k vocabulary and merge nodes were ~15 MiB for Qwen's
/// tokenizer, held for the whole run beside the tables built from them (docs/benchmarks.md, "Resident memory, fourth pass").
/// </summary>
internal sealed class TokenizerJsonReader(string path, JsonObject root, bool ownsRoot = false)
{
    // What ReadBpe learned: whether the model's tables spell model.vocab and model.merges exactly.
    bool _vocabInIdOrder;
    bool? _mergesAsPairs; // null: the merges cannot be written back exactly (mixed forms, or repeats)

    PargsException Error(string field, string problem) => new($"{path}: {field}: {problem}");

    public HuggingFaceTokenizer Read(int? bosId, int? eosId)
    {
        var modelJson = root["model"] as JsonObject ?? throw Error("model", "missing; expected an object with a \"type\".");
        // Older files leave the model's type out; BPE is then told apart by its merges.
        string type = modelJson["type"] is null && modelJson["merges"] is not null ? "BPE" : Str(modelJson["type"], "model.type");
        if (root["truncation"] is JsonObject) throw Error("truncation", "is set; Pargs does not truncate inside the tokenizer (leave it null).");
        if (root["padding"] is JsonObject) throw Error("padding", "is set; Pargs does not pad inside the tokenizer (leave it null).");
        var model = type switch
        {
            "BPE" => (TokenizerModel)ReadBpe(modelJson),
            "WordPiece" => ReadWordPiece(modelJson),
            "Unigram" => ReadUnigram(modelJson),
            _ => throw Error("model.type", $"is \"{type}\"; Pargs reads BPE, WordPiece and Unigram tokenizers."),
        };
        var added = ReadAddedTokens(model);
        var pipeline = new TokenizerPipeline(added, Normalizer(root["normalizer"], "normalizer"),
            PreTokenizerOf(root["pre_tokenizer"], "pre_tokenizer"), model,
            PostProcessorOf(root["post_processor"], "post_processor", added, model), DecoderOf(root["decoder"], "decoder"), SourceOf(modelJson, model));
        int size = Math.Max(model.Size, added.Count == 0 ? 0 : added.Max(t => t.Id) + 1);
        foreach (var (id, where) in PostProcessorIds(pipeline.PostProcessor))
        {
            if (id < 0 || id >= size) throw Error("post_processor", $"{where} id {id} is outside the vocabulary of {size} tokens.");
        }
        var settings = TokenizerConfig.Read(path, pipeline, bosId, eosId);
        if (model is WordPieceModel) return new WordPieceTokenizer(pipeline, settings);
        if (model is UnigramModel) return new UnigramTokenizer(pipeline, settings);
        bool byteLevel = HuggingFaceTokenizer.Flatten(pipeline.PreTokenizer).Any(p => p is ByteLevelPreTokenizer) || pipeline.Decoder is ByteLevelDecoder;
        return byteLevel ? new ByteLevelBpeTokenizer(pipeline, settings) : new SentencePieceBpeTokenizer(pipeline, settings);
    }

    /// <summary>The tree to save: the file's own, or (owned, BPE, exactly spelled by the tables) the tree without model.vocab
    /// and model.merges, which are written back from the model when asked.</summary>
    Func<JsonObject> SourceOf(JsonObject modelJson, TokenizerModel model)
    {
        if (!ownsRoot || model is not BpeModel bpe || !_vocabInIdOrder || _mergesAsPairs is not bool asPairs) return () => root;
        // Null placeholders keep the keys where they were, so the saved file lists its fields in the same order.
        modelJson["vocab"] = null;
        modelJson["merges"] = null;
        var skeleton = root;
        return () =>
        {
            var copy = skeleton.DeepClone().AsObject();
            var copyModel = copy["model"]!.AsObject();
            var vocab = new JsonObject();
            for (int id = 0; id < bpe.Size; id++) vocab[bpe.IdToToken(id)!] = id;
            var merges = new JsonArray();
            foreach (var (left, right) in bpe.Merges.InRankOrder)
            {
                string l = bpe.IdToToken(left)!, r = bpe.IdToToken(right)!;
                merges.Add(asPairs ? new JsonArray(l, r) : (JsonNode)$"{l} {r}");
            }
            copyModel["vocab"] = vocab;
            copyModel["merges"] = merges;
            return copy;
        };
    }

    static IEnumerable<(int Id, string Where)> PostProcessorIds(PostProcessor? processor)
    {
        if (processor is null) yield break;
        foreach (var id in processor.SingleSpecials.Before.Concat(processor.SingleSpecials.After)) yield return (id, "special token");
        if (processor is TemplateProcessor t)
            foreach (var (name, ids) in t.SpecialTokens) foreach (var id in ids) yield return (id, $"special_tokens[\"{name}\"]");
        if (processor is SequencePostProcessor s)
            foreach (var inner in s.Items) foreach (var x in PostProcessorIds(inner)) yield return x;
    }

    // ---- models ----

    (string?[] Tokens, Dictionary<string, int> Vocab) ReadVocab(JsonObject model)
    {
        var vocabJson = model["vocab"] as JsonObject ?? throw Error("model.vocab", "missing; expected an object of token → id.");
        var vocab = new Dictionary<string, int>(vocabJson.Count, StringComparer.Ordinal);
        int size = 0;
        _vocabInIdOrder = true;
        foreach (var (token, idNode) in vocabJson)
        {
            int id = Int(idNode, $"model.vocab[\"{token}\"]");
            if (id < 0 || id > 10_000_000) throw Error($"model.vocab[\"{token}\"]", $"id {id} is outside 0 … 10,000,000.");
            _vocabInIdOrder &= id == vocab.Count; // checked before the token is added: ids 0, 1, 2… one per token
            vocab[token] = id;
            size = Math.Max(size, id + 1);
        }
        if (size > 2 * vocab.Count + 1024) throw Error("model.vocab", $"ids reach {size - 1} but there are only {vocab.Count} tokens.");
        var tokens = new string?[size];
        foreach (var (token, id) in vocab) tokens[id] ??= token;
        return (tokens, vocab);
    }

    BpeModel ReadBpe(JsonObject model)
    {
        foreach (var field in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (model[field] is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length > 0)
                throw Error($"model.{field}", "is set; Pargs does not implement BPE subword prefixes/suffixes.");
        }
        if (model["dropout"] is JsonValue d && d.GetValueKind() == JsonValueKind.Number && d.GetValue<double>() > 0)
            throw Error("model.dropout", "is set; BPE dropout makes encoding random and is for training only.");
        var (tokens, vocab) = ReadVocab(model);
        var list = model["merges"] as JsonArray ?? throw Error("model.merges", "missing; expected a list of merges.");
        var merges = new BpeMerges(list.Count);
        bool pairs = list.Count > 0 && list[0] is JsonArray, sameForm = true;
        for (int i = 0; i < list.Count; i++)
        {
            string left, right;
            sameForm &= list[i] is JsonArray == pairs;
            if (list[i] is JsonArray pair && pair.Count == 2)
                (left, right) = (Str(pair[0], $"model.merges[{i}][0]"), Str(pair[1], $"model.merges[{i}][1]"));
            else
            {
                var text = Str(list[i], $"model.merges[{i}]");
                int space = text.IndexOf(' ', 1);
                if (space < 0 || text.IndexOf(' ', space + 1) >= 0)
                    throw Error($"model.merges[{i}]", $"\"{text}\" is not two tokens separated by one space.");
                (left, right) = (text[..space], text[(space + 1)..]);
            }
            if (!vocab.TryGetValue(left, out var l) || !vocab.TryGetValue(right, out var r))
                throw Error($"model.merges[{i}]", $"\"{left} {right}\" uses a token missing from model.vocab.");
            if (!vocab.TryGetValue(left + right, out var merged))
                throw Error($"model.merges[{i}]", $"the merged token \"{left + right}\" is missing from model.vocab.");
            merges.Add(l, r, merged);
        }
        _mergesAsPairs = sameForm && merges.Count == list.Count ? pairs : null;
        var unk = OptionalStr(model["unk_token"], "model.unk_token");
        return new BpeModel(tokens, vocab, merges, unk, Bool(model["fuse_unk"], false, "model.fuse_unk"),
            Bool(model["byte_fallback"], false, "model.byte_fallback"), Bool(model["ignore_merges"], false, "model.ignore_merges"));
    }

    WordPieceModel ReadWordPiece(JsonObject model)
    {
        var (tokens, vocab) = ReadVocab(model);
        var unk = OptionalStr(model["unk_token"], "model.unk_token") ?? "[UNK]";
        var prefix = OptionalStr(model["continuing_subword_prefix"], "model.continuing_subword_prefix") ?? "##";
        int max = model["max_input_chars_per_word"] is null ? 100 : Int(model["max_input_chars_per_word"], "model.max_input_chars_per_word");
        return new WordPieceModel(tokens, vocab, unk, prefix, max);
    }

    UnigramModel ReadUnigram(JsonObject model)
    {
        var list = model["vocab"] as JsonArray ?? throw Error("model.vocab", "missing; expected a list of [piece, score].");
        var pieces = new string[list.Count];
        var scores = new double[list.Count];
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is not JsonArray entry || entry.Count != 2) throw Error($"model.vocab[{i}]", "expected [piece, score].");
            pieces[i] = Str(entry[0], $"model.vocab[{i}][0]");
            scores[i] = entry[1] is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>()
                : throw Error($"model.vocab[{i}][1]", "expected a number.");
        }
        int? unk = model["unk_id"] is null || model["unk_id"]!.GetValueKind() == JsonValueKind.Null ? null : Int(model["unk_id"], "model.unk_id");
        if (unk is int u && (u < 0 || u >= pieces.Length)) throw Error("model.unk_id", $"{u} is outside the vocabulary of {pieces.Length}.");
        return new UnigramModel(pieces, scores, unk, Bool(model["byte_fallback"], false, "model.byte_fallback"));
    }

    List<AddedToken> ReadAddedTokens(TokenizerModel model)
    {
        var result = new List<AddedToken>();
        if (root["added_tokens"] is null || root["added_tokens"]!.GetValueKind() == JsonValueKind.Null) return result;
        if (root["added_tokens"] is not JsonArray list) throw Error("added_tokens", "expected a list.");
        for (int i = 0; i < list.Count; i++)
        {
            var field = $"added_tokens[{i}]";
            var t = list[i] as JsonObject ?? throw Error(field, "expected an object.");
            int id = Int(t["id"], field + ".id");
            if (id < 0 || id >= model.Size + 2 * list.Count + 1024)
                throw Error(field + ".id", $"{id} is far past the vocabulary of {model.Size} tokens and {list.Count} added tokens.");
            result.Add(new AddedToken(id, Str(t["content"], field + ".content"),
                Bool(t["special"], false, field + ".special"), Bool(t["lstrip"], false, field + ".lstrip"),
                Bool(t["rstrip"], false, field + ".rstrip"), Bool(t["single_word"], false, field + ".single_word"),
                Bool(t["normalized"], false, field + ".normalized")));
        }
        return result;
    }

    // ---- normalizers ----

    TextNormalizer? Normalizer(JsonNode? node, string field)
    {
        if (node is null || node.GetValueKind() == JsonValueKind.Null) return null;
        var o = node as JsonObject ?? throw Error(field, "expected an object.");
        var type = Str(o["type"], field + ".type");
        return type switch
        {
            "Sequence" => new SequenceNormalizer(Items(o, "normalizers", field).Select(x => Normalizer(x.Node, x.Field)!).ToList()),
            "NFC" => new UnicodeFormNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeFormNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeFormNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeFormNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            "Strip" => new StripNormalizer(Bool(o["strip_left"], true, field + ".strip_left"), Bool(o["strip_right"], true, field + ".strip_right")),
            "StripAccents" => new StripAccentsNormalizer(),
            "Replace" => new ReplaceNormalizer(Pattern(o["pattern"], field + ".pattern"), Str(o["content"], field + ".content")),
            "Prepend" => new PrependNormalizer(Str(o["prepend"], field + ".prepend")),
            "Precompiled" => PrecompiledNormalizer.FromBase64(Str(o["precompiled_charsmap"], field + ".precompiled_charsmap"), $"{path}: {field}"),
            "BertNormalizer" => new BertNormalizer(Bool(o["clean_text"], true, field + ".clean_text"),
                Bool(o["handle_chinese_chars"], true, field + ".handle_chinese_chars"),
                o["strip_accents"] is JsonValue sa && sa.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? sa.GetValue<bool>() : null,
                Bool(o["lowercase"], true, field + ".lowercase")),
            _ => throw Error(field + ".type", $"normalizer \"{type}\" is not implemented (Pargs has Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Replace, Prepend, Precompiled, BertNormalizer)."),
        };
    }

    // ---- pre-tokenizers ----

    PreTokenizer? PreTokenizerOf(JsonNode? node, string field)
    {
        if (node is null || node.GetValueKind() == JsonValueKind.Null) return null;
        var o = node as JsonObject ?? throw Error(field, "expected an object.");
        var type = Str(o["type"], field + ".type");
        switch (type)
        {
            case "Sequence":
                return new SequencePreTokenizer(Items(o, "pretokenizers", field).Select(x => PreTokenizerOf(x.Node, x.Field)!).ToList());
            case "ByteLevel":
                return new ByteLevelPreTokenizer(Bool(o["add_prefix_space"], true, field + ".add_prefix_space"), Bool(o["use_regex"], true, field + ".use_regex"));
            case "Split":
                return new SplitPreTokenizer(Pattern(o["pattern"], field + ".pattern"), Behavior(o["behavior"], field + ".behavior"),
                    Bool(o["invert"], false, field + ".invert"));
            case "Metaspace":
            {
                var replacement = Replacement(o, field);
                var scheme = Scheme(o, field);
                return new MetaspacePreTokenizer(replacement, scheme, Bool(o["split"], true, field + ".split"));
            }
            case "Whitespace": return new WhitespacePreTokenizer();
            case "WhitespaceSplit": return new WhitespaceSplitPreTokenizer();
            case "BertPreTokenizer": return new BertPreTokenizer();
            case "Punctuation":
                return new PunctuationPreTokenizer(o["behavior"] is null ? SplitBehavior.Isolated : Behavior(o["behavior"], field + ".behavior"));
            case "Digits": return new DigitsPreTokenizer(Bool(o["individual_digits"], false, field + ".individual_digits"));
            default:
                throw Error(field + ".type", $"pre-tokenizer \"{type}\" is not implemented (Pargs has Sequence, ByteLevel, Split, Metaspace, Whitespace, WhitespaceSplit, BertPreTokenizer, Punctuation, Digits).");
        }
    }

    char Replacement(JsonObject o, string field)
    {
        var replacement = OptionalStr(o["replacement"], field + ".replacement") ?? "▁";
        if (replacement.Length != 1) throw Error(field + ".replacement", $"is \"{replacement}\"; expected one character.");
        return replacement[0];
    }

    PrependScheme Scheme(JsonObject o, string field)
    {
        var scheme = OptionalStr(o["prepend_scheme"], field + ".prepend_scheme")
            ?? (Bool(o["add_prefix_space"], true, field + ".add_prefix_space") ? "always" : "never");
        return scheme switch
        {
            "always" => PrependScheme.Always,
            "first" => PrependScheme.First,
            "never" => PrependScheme.Never,
            _ => throw Error(field + ".prepend_scheme", $"is \"{scheme}\"; expected always, first or never."),
        };
    }

    SplitPattern Pattern(JsonNode? node, string field)
    {
        var o = node as JsonObject ?? throw Error(field, "expected {\"String\": …} or {\"Regex\": …}.");
        if (o["String"] is JsonNode s) return new LiteralPattern(Str(s, field + ".String"));
        if (o["Regex"] is JsonNode r)
        {
            var pattern = Str(r, field + ".Regex");
            try { return new RegexPattern(new UnicodeRegex(pattern)); }
            catch (ArgumentException e) { throw Error(field + ".Regex", $"regex does not compile in .NET: {e.Message}"); }
        }
        throw Error(field, "expected {\"String\": …} or {\"Regex\": …}.");
    }

    SplitBehavior Behavior(JsonNode? node, string field)
    {
        var name = Str(node, field);
        return Enum.TryParse<SplitBehavior>(name, ignoreCase: false, out var b) && Enum.IsDefined(b) && !char.IsDigit(name[0]) ? b
            : throw Error(field, $"is \"{name}\"; expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous.");
    }

    // ---- post-processors ----

    PostProcessor? PostProcessorOf(JsonNode? node, string field, List<AddedToken> added, TokenizerModel model)
    {
        if (node is null || node.GetValueKind() == JsonValueKind.Null) return null;
        var o = node as JsonObject ?? throw Error(field, "expected an object.");
        var type = Str(o["type"], field + ".type");
        switch (type)
        {
            case "Sequence":
                return new SequencePostProcessor(Items(o, "processors", field).Select(x => PostProcessorOf(x.Node, x.Field, added, model)!).ToList());
            case "ByteLevel":
                return new IdentityPostProcessor();
            case "TemplateProcessing":
            {
                var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
                if (o["special_tokens"] is JsonObject st)
                {
                    foreach (var (name, value) in st)
                    {
                        var f = $"{field}.special_tokens[\"{name}\"]";
                        var ids = (value as JsonObject)?["ids"] as JsonArray ?? throw Error(f + ".ids", "expected a list of ids.");
                        specials[name] = ids.Select((x, i) => Int(x, $"{f}.ids[{i}]")).ToArray();
                    }
                }
                var single = Template(o["single"], field + ".single", specials);
                var pair = o["pair"] is null ? single : Template(o["pair"], field + ".pair", specials);
                return new TemplateProcessor(single, pair, specials);
            }
            case "BertProcessing":
            case "RobertaProcessing":
            {
                int Token(string key)
                {
                    var pair = o[key] as JsonArray;
                    if (pair is null || pair.Count != 2) throw Error($"{field}.{key}", "expected [token, id].");
                    return Int(pair[1], $"{field}.{key}[1]");
                }
                return new ClsSepProcessor(Token("cls"), Token("sep"), type == "RobertaProcessing");
            }
            default:
                throw Error(field + ".type", $"post-processor \"{type}\" is not implemented (Pargs has Sequence, ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing).");
        }
    }

    List<TemplatePiece> Template(JsonNode? node, string field, Dictionary<string, int[]> specials)
    {
        var list = node as JsonArray ?? throw Error(field, "expected a list of template pieces.");
        var pieces = new List<TemplatePiece>();
        for (int i = 0; i < list.Count; i++)
        {
            var f = $"{field}[{i}]";
            var o = list[i] as JsonObject ?? throw Error(f, "expected {\"Sequence\": …} or {\"SpecialToken\": …}.");
            if (o["Sequence"] is JsonObject seq)
            {
                var id = Str(seq["id"], f + ".Sequence.id");
                if (id is not ("A" or "B")) throw Error(f + ".Sequence.id", $"is \"{id}\"; expected A or B.");
                pieces.Add(new TemplatePiece(true, id == "B", null, Int(seq["type_id"], f + ".Sequence.type_id")));
            }
            else if (o["SpecialToken"] is JsonObject sp)
            {
                var id = Str(sp["id"], f + ".SpecialToken.id");
                if (!specials.ContainsKey(id)) throw Error(f + ".SpecialToken.id", $"\"{id}\" is not listed in special_tokens.");
                pieces.Add(new TemplatePiece(false, false, id, Int(sp["type_id"], f + ".SpecialToken.type_id")));
            }
            else throw Error(f, "expected {\"Sequence\": …} or {\"SpecialToken\": …}.");
        }
        return pieces;
    }

    // ---- decoders ----

    TokenDecoder? DecoderOf(JsonNode? node, string field)
    {
        if (node is null || node.GetValueKind() == JsonValueKind.Null) return null;
        var o = node as JsonObject ?? throw Error(field, "expected an object.");
        var type = Str(o["type"], field + ".type");
        return type switch
        {
            "Sequence" => new SequenceDecoder(Items(o, "decoders", field).Select(x => DecoderOf(x.Node, x.Field)!).ToList()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Metaspace" => new MetaspaceDecoder(Replacement(o, field), Scheme(o, field)),
            "Replace" => new ReplaceDecoder(Pattern(o["pattern"], field + ".pattern"), Str(o["content"], field + ".content")),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => StripDecoderOf(o, field),
            "WordPiece" => new WordPieceDecoder(OptionalStr(o["prefix"], field + ".prefix") ?? "##", Bool(o["cleanup"], true, field + ".cleanup")),
            "BPEDecoder" => new BpeSuffixDecoder(OptionalStr(o["suffix"], field + ".suffix") ?? "</w>"),
            _ => throw Error(field + ".type", $"decoder \"{type}\" is not implemented (Pargs has Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, WordPiece, BPEDecoder)."),
        };
    }

    StripDecoder StripDecoderOf(JsonObject o, string field)
    {
        var content = Str(o["content"], field + ".content");
        if (content.Length != 1) throw Error(field + ".content", $"is \"{content}\"; expected one character.");
        return new StripDecoder(content[0], Int(o["start"], field + ".start"), Int(o["stop"], field + ".stop"));
    }

    // ---- typed field access ----

    IEnumerable<(JsonNode? Node, string Field)> Items(JsonObject o, string listName, string field)
    {
        var list = o[listName] as JsonArray ?? throw Error($"{field}.{listName}", "expected a list.");
        for (int i = 0; i < list.Count; i++) yield return (list[i] ?? throw Error($"{field}.{listName}[{i}]", "is null."), $"{field}.{listName}[{i}]");
    }

    string Str(JsonNode? node, string field) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw Error(field, "expected a string.");

    string? OptionalStr(JsonNode? node, string field) =>
        node is null || node.GetValueKind() == JsonValueKind.Null ? null : Str(node, field);

    int Int(JsonNode? node, string field) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i) ? i : throw Error(field, "expected an integer.");

    bool Bool(JsonNode? node, bool fallback, string field) => node switch
    {
        null => fallback,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Null => fallback,
        _ => throw Error(field, "expected true or false."),
    };
}
