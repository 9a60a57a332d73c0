using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Tokenizers;

namespace Pargs.Checkpoints;

/// <summary>
/// A tokenizer as llama.cpp's vocabulary loader reads it from GGUF (<c>tokenizer.ggml.*</c>):
/// <list type="bullet">
/// <item>"gpt2": byte-level BPE — tokens in GPT-2's byte-to-unicode spelling, token types, merges, and
/// <c>tokenizer.ggml.pre</c> naming the pre-tokenizer regex (llama.cpp knows them by name only);</item>
/// <item>"llama": SentencePiece — pieces with "▁", a score per piece (llama.cpp merges the adjacent pair
/// whose concatenation scores highest) and token types (byte pieces &lt;0xAB&gt; as BYTE).</item>
/// </list>
/// Vocabularies shorter than the embedding are padded with unused "[PADn]" tokens, since llama.cpp takes
/// the vocabulary size from the token list.
/// </summary>
public sealed class GgufVocabulary
{
    // tokenizer.ggml.token_type values (llama.cpp's llama_token_type, SentencePiece's piece types).
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    /// <summary>tokenizer.ggml.model: "gpt2" or "llama".</summary>
    public required string Model { get; init; }
    /// <summary>tokenizer.ggml.pre for "gpt2" vocabularies (e.g. "gpt-2", "qwen2", "llama-bpe").</summary>
    public string? Pre { get; init; }
    public required string[] Tokens { get; init; }
    public required int[] TokenTypes { get; init; }
    public float[]? Scores { get; init; }
    public string[]? Merges { get; init; }
    public int? BosId { get; init; }
    public int? EosId { get; init; }
    public int? UnknownId { get; init; }
    public int? PaddingId { get; init; }
    public bool? AddBos { get; init; }
    public bool? AddEos { get; init; }

    /// <summary>Known byte-level pre-tokenizer regexes by the name llama.cpp gives them (its pre-tokenizer names).</summary>
    static readonly (string Pattern, string Pre)[] KnownPreTokenizers =
    [
        (Pargs.Tokenizers.ByteLevelPreTokenizer.Gpt2Pattern, "gpt-2"),
        (@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", "qwen2"),
        (@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", "llama-bpe"),
    ];

    /// <summary>The vocabulary of a loaded checkpoint: tokenizer.json for a Hugging Face folder, the embedded SentencePiece vocabulary for GGUF and llama2.c.</summary>
    public static GgufVocabulary ForCheckpoint(CheckpointContents contents)
    {
        if (contents.Format == "hf-folder")
        {
            string path = Path.Combine(contents.Source, HuggingFaceFolder.TokenizerFile);
            if (!File.Exists(path))
                throw new PargsException($"{contents.Source}: no {HuggingFaceFolder.TokenizerFile}; llama.cpp needs the vocabulary inside the GGUF, so pargs convert needs the model's tokenizer.json");
            return FromTokenizerJson(path, contents.Config.BosTokenId, contents.Config.EosTokenId, contents.Config.PadTokenId);
        }
        var tokenizer = TokenizerLoader.ForCheckpoint(contents);
        if (tokenizer is not SentencePieceTokenizer sp)
            throw new PargsException($"{contents.Source}: its {tokenizer.GetType().Name} has no GGUF form in pargs convert");
        return FromSentencePiece(sp, contents.Config.PadTokenId);
    }

    public static GgufVocabulary FromSentencePiece(SentencePieceTokenizer sp, int? paddingId) => new()
    {
        Model = "llama",
        Tokens = [.. sp.Pieces],
        Scores = [.. sp.Scores],
        TokenTypes = [.. sp.TokenTypes],
        BosId = sp.BosId,
        EosId = sp.EosId,
        UnknownId = sp.UnknownId,
        PaddingId = paddingId,
        // llama2.c and SentencePiece Llama vocabularies prepend BOS and never append EOS.
        AddBos = true,
        AddEos = false,
    };

    /// <summary>
    /// From a Hugging Face tokenizer.json (BPE, byte-level or SentencePiece-style). It is first loaded as
    /// Pargs loads it, so anything Pargs refuses is refused here with the same message.
    /// </summary>
    public static GgufVocabulary FromTokenizerJson(string path, int? bosId, int? eosId, int? paddingId)
    {
        var tokenizer = TokenizerJson.Load(path, bosId, eosId);
        var root = Pargs.Json.CheckedJson.ReadFile(path, Pargs.Json.CheckedJsonLimits.Large).AsObject();
        var model = root["model"]!.AsObject();
        var tokenOf = new SortedDictionary<int, string>();
        foreach (var (token, id) in model["vocab"]!.AsObject()) tokenOf.TryAdd(id!.GetValue<int>(), token);
        var special = new HashSet<int>();
        var userDefined = new HashSet<int>();
        if (root["added_tokens"] is JsonArray added)
            foreach (var node in added.OfType<JsonObject>())
            {
                int id = node["id"]!.GetValue<int>();
                tokenOf[id] = node["content"]!.GetValue<string>();
                if (node["special"]?.GetValue<bool>() == true) special.Add(id); else userDefined.Add(id);
            }
        int count = tokenOf.Count == 0 ? 0 : tokenOf.Keys.Max() + 1;
        if (tokenOf.Count != count)
            throw new PargsException($"{path}: token ids are not contiguous ({tokenOf.Count} tokens, highest id {count - 1}); llama.cpp needs one token per id");
        var tokens = tokenOf.Values.ToArray();
        var merges = ((JsonArray)model["merges"]!).Select(m => m is JsonArray pair ? $"{pair[0]!.GetValue<string>()} {pair[1]!.GetValue<string>()}" : m!.GetValue<string>()).ToArray();
        var config = ReadTokenizerConfig(Path.Combine(Path.GetDirectoryName(path)!, "tokenizer_config.json"));
        bool addBos = config.AddBos ?? (TemplateStartsWithSpecial(root) || (tokenizer is SentencePieceBpeTokenizer && tokenizer.BosId is not null));
        bool addEos = config.AddEos ?? false;

        if (tokenizer is ByteLevelBpeTokenizer)
        {
            var types = new int[count];
            for (int id = 0; id < count; id++) types[id] = special.Contains(id) ? Control : userDefined.Contains(id) ? UserDefined : Normal;
            return new GgufVocabulary
            {
                Model = "gpt2", Pre = PreTokenizerName(root, path), Tokens = tokens, TokenTypes = types, Merges = merges,
                BosId = tokenizer.BosId, EosId = tokenizer.EosId, PaddingId = paddingId, AddBos = addBos, AddEos = addEos,
            };
        }

        // SentencePiece-style BPE: llama.cpp's "llama" vocabulary merges by score, so a merged piece scores
        // minus the rank of the merge that makes it (earlier merges first), as in SentencePiece's own BPE models.
        var scores = new float[count];
        var idOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < count; id++) idOf.TryAdd(tokens[id], id);
        for (int rank = merges.Length - 1; rank >= 0; rank--)
        {
            var parts = merges[rank].Split(' ');
            if (idOf.TryGetValue(parts[0] + parts[1], out int merged)) scores[merged] = -rank - 1;
        }
        string? unk = model["unk_token"] is JsonValue u && u.GetValueKind() == JsonValueKind.String ? u.GetValue<string>() : null;
        int? unknownId = unk is not null && idOf.TryGetValue(unk, out int ui) ? ui : null;
        var spTypes = new int[count];
        for (int id = 0; id < count; id++)
            spTypes[id] = id == unknownId ? Unknown
                : special.Contains(id) || id == tokenizer.BosId || id == tokenizer.EosId ? Control
                : userDefined.Contains(id) ? UserDefined
                : TokenText.ByteOfPiece(tokens[id]) is not null ? Byte
                : Normal;
        return new GgufVocabulary
        {
            Model = "llama", Tokens = tokens, TokenTypes = spTypes, Scores = scores,
            BosId = tokenizer.BosId, EosId = tokenizer.EosId, UnknownId = unknownId, PaddingId = paddingId, AddBos = addBos, AddEos = addEos,
        };
    }

    static (bool? AddBos, bool? AddEos) ReadTokenizerConfig(string path)
    {
        if (!File.Exists(path)) return (null, null);
        try
        {
            var json = Pargs.Json.CheckedJson.ReadFile(path).Node as JsonObject;
            bool? Flag(string key) => json?[key] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : null;
            return (Flag("add_bos_token"), Flag("add_eos_token"));
        }
        catch (JsonException e)
        {
            throw new PargsException($"{path}: not valid JSON ({e.Message})");
        }
    }

    /// <summary>A TemplateProcessing post-processor whose single-sequence template starts with a special token adds BOS.</summary>
    static bool TemplateStartsWithSpecial(JsonObject root)
    {
        var pp = root["post_processor"] as JsonObject;
        var processors = pp?["type"]?.GetValue<string>() == "Sequence" ? (pp["processors"] as JsonArray)?.OfType<JsonObject>() ?? [] : pp is null ? [] : [pp];
        return processors.Any(p => p["type"]?.GetValue<string>() == "TemplateProcessing"
            && p["single"] is JsonArray { Count: > 0 } single && single[0]?["SpecialToken"] is not null);
    }

    /// <summary>llama.cpp's name for the byte-level pre-tokenizer: ByteLevel's own regex is "gpt-2"; a Split regex must be one llama.cpp knows.</summary>
    static string PreTokenizerName(JsonObject root, string path)
    {
        var pre = root["pre_tokenizer"] as JsonObject;
        var steps = pre?["type"]?.GetValue<string>() == "Sequence" ? (pre["pretokenizers"] as JsonArray)?.OfType<JsonObject>().ToList() ?? [] : pre is null ? [] : [pre];
        var patterns = new List<string>();
        foreach (var step in steps)
        {
            string type = step["type"]?.GetValue<string>() ?? "";
            if (type == "ByteLevel" && (step["use_regex"]?.GetValue<bool>() ?? true)) patterns.Add(Pargs.Tokenizers.ByteLevelPreTokenizer.Gpt2Pattern);
            else if (type == "Split" && step["pattern"]?["Regex"]?.GetValue<string>() is string rx) patterns.Add(rx);
        }
        if (patterns.Count == 1)
            foreach (var (pattern, name) in KnownPreTokenizers)
                if (patterns[0] == pattern) return name;
        throw new PargsException($"{path}: pre_tokenizer {(patterns.Count == 0 ? "has no split regex" : $"splits with {string.Join(" then ", patterns.Select(p => $"\"{p}\""))}")}, which is not a pre-tokenizer llama.cpp knows by name (pargs convert knows {string.Join(", ", KnownPreTokenizers.Select(k => k.Pre))})");
    }

    /// <summary>
    /// The inverse for byte-level vocabularies: a GGUF's "gpt2" <c>tokenizer.ggml.*</c> as the tokenizer.json it
    /// stands for (vocabulary, merges, control and user-defined tokens as added tokens, the pre-tokenizer named
    /// by <c>tokenizer.ggml.pre</c>), so Pargs tokenizes as the source model did. Unknown pre names are refused.
    /// </summary>
    public static JsonObject ToTokenizerJson(GgufFile gguf)
    {
        string path = gguf.Path;
        T Array<T>(string key) where T : class =>
            gguf.Metadata.TryGetValue(key, out var v) && v is T t ? t : throw new PargsException($"{path}: GGUF metadata \"{key}\" is missing or not an array of the expected type");
        var tokens = Array<string[]>("tokenizer.ggml.tokens");
        var types = Array<int[]>("tokenizer.ggml.token_type");
        var merges = Array<string[]>("tokenizer.ggml.merges");
        if (types.Length != tokens.Length) throw new PargsException($"{path}: tokenizer.ggml.token_type has {types.Length} entries for {tokens.Length} tokens");
        string pre = gguf.GetString("tokenizer.ggml.pre") ?? "default";
        string? pattern = KnownPreTokenizers.FirstOrDefault(k => k.Pre == pre).Pattern;
        if (pattern is null)
            throw new PargsException($"{path}: tokenizer.ggml.pre \"{pre}\" is not a pre-tokenizer Pargs knows (known: {string.Join(", ", KnownPreTokenizers.Select(k => k.Pre))})");
        var vocab = new JsonObject();
        var added = new JsonArray();
        for (int id = 0; id < tokens.Length; id++)
        {
            if (!vocab.ContainsKey(tokens[id])) vocab[tokens[id]] = id;
            if (types[id] is Control or UserDefined)
                added.Add(new JsonObject
                {
                    ["id"] = id, ["content"] = tokens[id], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                    ["normalized"] = false, ["special"] = types[id] == Control,
                });
        }
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = pre == "gpt-2" };
        JsonNode preTokenizer = pre == "gpt-2" ? byteLevel : new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                byteLevel),
        };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            // Qwen2's tokenizer normalizes to NFC before splitting; llama.cpp's "qwen2" pre-tokenizer stands for it.
            ["normalizer"] = pre == "qwen2" ? new JsonObject { ["type"] = "NFC" } : null,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab, ["merges"] = new JsonArray(merges.Select(m => (JsonNode?)m).ToArray()),
            },
        };
    }

    /// <summary>Writes the <c>tokenizer.ggml.*</c> keys, padding the token list to <paramref name="vocabSize"/> (the embedding's rows).</summary>
    public void WriteTo(GgufWriter writer, int vocabSize, string source)
    {
        if (Tokens.Length > vocabSize)
            throw new PargsException($"{source}: the tokenizer has {Tokens.Length} tokens but the model's embedding only {vocabSize} rows");
        int pad = vocabSize - Tokens.Length;
        var tokens = Tokens.Concat(Enumerable.Range(Tokens.Length, pad).Select(i => $"[PAD{i}]")).ToArray();
        var types = TokenTypes.Concat(Enumerable.Repeat(Unused, pad)).ToArray();
        writer.Set("tokenizer.ggml.model", GgufValue.String(Model));
        if (Pre is not null) writer.Set("tokenizer.ggml.pre", GgufValue.String(Pre));
        writer.Set("tokenizer.ggml.tokens", GgufValue.Strings(tokens));
        if (Scores is not null) writer.Set("tokenizer.ggml.scores", GgufValue.Floats([.. Scores, .. Enumerable.Repeat(-1000f, pad)]));
        writer.Set("tokenizer.ggml.token_type", GgufValue.Ints(types));
        if (Merges is not null) writer.Set("tokenizer.ggml.merges", GgufValue.Strings(Merges));
        void Id(string key, int? id)
        {
            if (id is not { } i) return;
            if (i < 0 || i >= vocabSize) throw new PargsException($"{source}: {key} {i} is outside the vocabulary of {vocabSize}");
            writer.Set(key, GgufValue.U32((uint)i));
        }
        Id("tokenizer.ggml.bos_token_id", BosId);
        Id("tokenizer.ggml.eos_token_id", EosId);
        Id("tokenizer.ggml.unknown_token_id", UnknownId);
        Id("tokenizer.ggml.padding_token_id", PaddingId);
        if (AddBos is { } bos) writer.Set("tokenizer.ggml.add_bos_token", GgufValue.Bool(bos));
        if (AddEos is { } eos) writer.Set("tokenizer.ggml.add_eos_token", GgufValue.Bool(eos));
    }
}
