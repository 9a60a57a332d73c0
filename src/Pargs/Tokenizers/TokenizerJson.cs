using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Pargs.Tokenizers;

/// <summary>
/// Reads a Hugging Face tokenizer.json whose model is BPE: byte-level (GPT-2, Qwen2, Llama-3) or
/// SentencePiece-style with byte fallback (Llama-2, Mistral). Other models (WordPiece, Unigram, …) and
/// pipeline parts Pargs does not implement are refused with a message naming the field.
/// </summary>
public static class TokenizerJson
{
    static readonly string[] BosNames = ["<s>", "<|begin_of_text|>"];
    static readonly string[] EosNames = ["</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"];

    public static ITokenizer Load(string path) => Load(path, null, null);

    /// <summary>Explicit <paramref name="bosId"/>/<paramref name="eosId"/> (e.g. from config.json) win over what the file implies.</summary>
    public static ITokenizer Load(string path, int? bosId, int? eosId)
    {
        if (!File.Exists(path)) throw new PargsException($"{path}: tokenizer.json not found.");
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new PargsException($"{path}: expected a JSON object at the top level.");
        }
        catch (JsonException e)
        {
            throw new PargsException($"{path}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }
        return new Reader(path, root).Read(bosId, eosId);
    }

    /// <summary>A tokenizer.json already parsed (e.g. rebuilt from a GGUF vocabulary); <paramref name="source"/> names it in errors.</summary>
    public static ITokenizer FromJson(JsonObject root, string source, int? bosId, int? eosId) => new Reader(source, root).Read(bosId, eosId);

    sealed class Reader(string path, JsonObject root)
    {
        PargsException Error(string field, string problem) => new($"{path}: {field}: {problem}");

        public ITokenizer Read(int? bosId, int? eosId)
        {
            var model = root["model"] as JsonObject ?? throw Error("model", "missing; expected an object with \"type\": \"BPE\".");
            var type = Str(model["type"], "model.type");
            if (type != "BPE")
                throw Error("model.type", $"is \"{type}\"; Pargs reads only BPE tokenizers (byte-level or SentencePiece-style).");
            foreach (var field in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            {
                if (model[field] is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length > 0)
                    throw Error($"model.{field}", "is set; Pargs does not implement subword prefixes/suffixes.");
            }
            var vocabJson = model["vocab"] as JsonObject ?? throw Error("model.vocab", "missing; expected an object of token → id.");
            var idOf = new Dictionary<string, int>(StringComparer.Ordinal);
            int size = 0;
            foreach (var (token, idNode) in vocabJson)
            {
                int id = Int(idNode, $"model.vocab[\"{token}\"]");
                if (id < 0) throw Error($"model.vocab[\"{token}\"]", $"id {id} is negative.");
                idOf[token] = id;
                size = Math.Max(size, id + 1);
            }
            var tokens = new string?[size];
            foreach (var (token, id) in idOf) tokens[id] ??= token;
            var merges = ReadMerges(model, idOf);
            var added = ReadAddedTokens();
            bosId ??= TemplateBos(added, idOf) ?? ByName(BosNames, added, idOf);
            eosId ??= ByName(EosNames, added, idOf);
            var source = (root["normalizer"], root["pre_tokenizer"], root["post_processor"], root["decoder"]);
            bool ignoreMerges = Bool(model["ignore_merges"], false);

            if (IsByteLevel())
                return new ByteLevelBpeTokenizer(tokens, merges, added, ReadByteLevelOptions(ignoreMerges), bosId, eosId, source);
            bool byteFallback = Bool(model["byte_fallback"], false);
            var sp = ReadSentencePieceOptions(ignoreMerges, Bool(model["fuse_unk"], false), byteFallback);
            if (sp is null)
                throw Error("pre_tokenizer", "is neither ByteLevel nor SentencePiece-style (Metaspace, or normalizer Replace \" \" → \"▁\"); Pargs cannot tell how to split text.");
            var unk = model["unk_token"] is JsonValue u && u.GetValueKind() == JsonValueKind.String ? u.GetValue<string>() : null;
            return new SentencePieceBpeTokenizer(tokens, merges, added, sp, unk, bosId, eosId, source);
        }

        BpeMerges ReadMerges(JsonObject model, Dictionary<string, int> idOf)
        {
            var list = model["merges"] as JsonArray ?? throw Error("model.merges", "missing; expected a list of merges.");
            var merges = new BpeMerges();
            for (int i = 0; i < list.Count; i++)
            {
                string left, right;
                if (list[i] is JsonArray pair && pair.Count == 2)
                    (left, right) = (Str(pair[0], $"model.merges[{i}][0]"), Str(pair[1], $"model.merges[{i}][1]"));
                else
                {
                    var text = Str(list[i], $"model.merges[{i}]");
                    var parts = text.Split(' ');
                    if (parts.Length != 2) throw Error($"model.merges[{i}]", $"\"{text}\" is not two tokens separated by one space.");
                    (left, right) = (parts[0], parts[1]);
                }
                if (!idOf.TryGetValue(left, out var l) || !idOf.TryGetValue(right, out var r))
                    throw Error($"model.merges[{i}]", $"\"{left} {right}\" uses a token missing from model.vocab.");
                if (!idOf.TryGetValue(left + right, out var merged))
                    throw Error($"model.merges[{i}]", $"the merged token \"{left + right}\" is missing from model.vocab.");
                merges.Add(l, r, merged);
            }
            return merges;
        }

        List<AddedToken> ReadAddedTokens()
        {
            var result = new List<AddedToken>();
            if (root["added_tokens"] is not JsonArray list) return result;
            for (int i = 0; i < list.Count; i++)
            {
                var field = $"added_tokens[{i}]";
                var t = list[i] as JsonObject ?? throw Error(field, "expected an object.");
                result.Add(new AddedToken(Int(t["id"], field + ".id"), Str(t["content"], field + ".content"),
                    Bool(t["special"], false), Bool(t["lstrip"], false), Bool(t["rstrip"], false),
                    Bool(t["single_word"], false), Bool(t["normalized"], false)));
            }
            return result;
        }

        /// <summary>The special token a TemplateProcessing post-processor puts before sequence A, if any.</summary>
        int? TemplateBos(List<AddedToken> added, Dictionary<string, int> idOf)
        {
            var processors = root["post_processor"] is JsonObject pp
                ? (Str(pp["type"], "post_processor.type") == "Sequence" ? (pp["processors"] as JsonArray)?.OfType<JsonObject>() ?? [] : [pp])
                : [];
            foreach (var p in processors)
            {
                if (p["type"]?.GetValue<string>() != "TemplateProcessing" || p["single"] is not JsonArray single) continue;
                foreach (var piece in single)
                {
                    if (piece?["Sequence"] is not null) break;
                    if (piece?["SpecialToken"]?["id"]?.GetValue<string>() is string name)
                    {
                        if (p["special_tokens"]?[name]?["ids"] is JsonArray ids && ids.Count > 0) return Int(ids[0], $"post_processor.special_tokens[\"{name}\"].ids[0]");
                        return ByName([name], added, idOf);
                    }
                }
            }
            return null;
        }

        static int? ByName(string[] names, List<AddedToken> added, Dictionary<string, int> idOf)
        {
            foreach (var name in names)
            {
                if (added.FirstOrDefault(t => t.Content == name) is AddedToken t) return t.Id;
                if (idOf.TryGetValue(name, out var id)) return id;
            }
            return null;
        }

        static IEnumerable<(JsonObject Node, string Field)> Flatten(JsonNode? node, string field, string listName)
        {
            if (node is not JsonObject o) yield break;
            if (o["type"]?.GetValue<string>() == "Sequence" && o[listName] is JsonArray items)
            {
                for (int i = 0; i < items.Count; i++)
                    foreach (var inner in Flatten(items[i], $"{field}.{listName}[{i}]", listName)) yield return inner;
            }
            else yield return (o, field);
        }

        bool IsByteLevel() =>
            Flatten(root["pre_tokenizer"], "pre_tokenizer", "pretokenizers").Any(p => p.Node["type"]?.GetValue<string>() == "ByteLevel") ||
            Flatten(root["decoder"], "decoder", "decoders").Any(p => p.Node["type"]?.GetValue<string>() == "ByteLevel");

        ByteLevelBpeOptions ReadByteLevelOptions(bool ignoreMerges)
        {
            bool nfc = false;
            foreach (var (n, field) in Flatten(root["normalizer"], "normalizer", "normalizers"))
            {
                var type = Str(n["type"], field + ".type");
                if (type == "NFC") nfc = true;
                else throw Error(field + ".type", $"normalizer \"{type}\" is not implemented for byte-level BPE (only NFC).");
            }
            var splits = new List<Regex>();
            bool addPrefixSpace = false;
            foreach (var (p, field) in Flatten(root["pre_tokenizer"], "pre_tokenizer", "pretokenizers"))
            {
                switch (Str(p["type"], field + ".type"))
                {
                    case "ByteLevel":
                        addPrefixSpace = Bool(p["add_prefix_space"], false);
                        if (Bool(p["use_regex"], true)) splits.Add(Compile(ByteLevelBpeOptions.Gpt2Pattern, field));
                        break;
                    case "Split":
                        var behavior = p["behavior"]?.GetValue<string>();
                        if (behavior != "Isolated" || Bool(p["invert"], false))
                            throw Error(field + ".behavior", $"Split with behavior \"{behavior}\" (invert {Bool(p["invert"], false)}) is not implemented; only Isolated.");
                        var pattern = p["pattern"] as JsonObject ?? throw Error(field + ".pattern", "missing.");
                        splits.Add(pattern["Regex"] is JsonNode rx ? Compile(Str(rx, field + ".pattern.Regex"), field + ".pattern.Regex")
                            : Compile(Regex.Escape(Str(pattern["String"], field + ".pattern.String")), field + ".pattern.String"));
                        break;
                    case "Digits":
                        splits.Add(Compile(Bool(p["individual_digits"], false) ? @"\p{N}" : @"\p{N}+", field));
                        break;
                    case var other:
                        throw Error(field + ".type", $"pre-tokenizer \"{other}\" is not implemented for byte-level BPE.");
                }
            }
            return new ByteLevelBpeOptions(splits, addPrefixSpace, nfc, ignoreMerges);
        }

        Regex Compile(string pattern, string field)
        {
            try { return new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant); }
            catch (ArgumentException e) { throw Error(field, $"regex does not compile in .NET: {e.Message}"); }
        }

        SentencePieceBpeOptions? ReadSentencePieceOptions(bool ignoreMerges, bool fuseUnk, bool byteFallback)
        {
            string? prepend = null;
            bool replaceSpaces = false, metaspace = false, split = false;
            string scheme = "never";
            foreach (var (n, field) in Flatten(root["normalizer"], "normalizer", "normalizers"))
            {
                switch (Str(n["type"], field + ".type"))
                {
                    case "Prepend":
                        prepend = Str(n["prepend"], field + ".prepend");
                        if (prepend != "▁") throw Error(field + ".prepend", $"is \"{prepend}\"; expected \"▁\".");
                        break;
                    case "Replace":
                        var from = n["pattern"]?["String"]?.GetValue<string>();
                        var to = n["content"]?.GetValue<string>();
                        if (from != " " || to != "▁") throw Error(field, "only Replace \" \" → \"▁\" is implemented.");
                        replaceSpaces = true;
                        break;
                    case var other:
                        throw Error(field + ".type", $"normalizer \"{other}\" is not implemented for SentencePiece-style BPE.");
                }
            }
            foreach (var (p, field) in Flatten(root["pre_tokenizer"], "pre_tokenizer", "pretokenizers"))
            {
                var type = Str(p["type"], field + ".type");
                if (type != "Metaspace") throw Error(field + ".type", $"pre-tokenizer \"{type}\" is not implemented for SentencePiece-style BPE.");
                var replacement = p["replacement"]?.GetValue<string>() ?? "▁";
                if (replacement != "▁") throw Error(field + ".replacement", $"is \"{replacement}\"; expected \"▁\".");
                metaspace = replaceSpaces = true;
                split = Bool(p["split"], true);
                scheme = p["prepend_scheme"]?.GetValue<string>() ?? (Bool(p["add_prefix_space"], true) ? "always" : "never");
                if (scheme is not ("always" or "first" or "never")) throw Error(field + ".prepend_scheme", $"is \"{scheme}\"; expected always, first or never.");
            }
            if (!replaceSpaces && !metaspace) return null;
            return new SentencePieceBpeOptions(prepend, replaceSpaces, scheme, split, ignoreMerges, fuseUnk, byteFallback);
        }

        string Str(JsonNode? node, string field) =>
            node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw Error(field, "expected a string.");

        int Int(JsonNode? node, string field) =>
            node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i) ? i : throw Error(field, "expected an integer.");

        bool Bool(JsonNode? node, bool fallback) =>
            node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : fallback;
    }
}
