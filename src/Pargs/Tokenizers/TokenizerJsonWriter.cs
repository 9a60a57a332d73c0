using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Tokenizers;

/// <summary>Builds and writes Hugging Face tokenizer.json documents (format version 1.0).</summary>
internal static class TokenizerJsonWriter
{
    internal static JsonSerializerOptions Options => Indented;

    static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // keep "▁" and "Ġ" readable
    };

    /// <summary>The <c>model</c> object of a BPE tokenizer. Ids without a token (gaps) are left out.</summary>
    public static JsonObject BpeModel(IReadOnlyList<string?> vocabById, IEnumerable<(string Left, string Right)> merges,
        string? unkToken, bool byteFallback, bool fuseUnk, bool ignoreMerges)
    {
        var vocab = new JsonObject();
        for (int id = 0; id < vocabById.Count; id++)
        {
            if (vocabById[id] is string token && !vocab.ContainsKey(token)) vocab[token] = id;
        }
        var mergeList = merges.ToList();
        // "a b" strings are what every tokenizers version reads; pairs whose pieces hold a space need the
        // newer [a, b] form.
        bool asPairs = mergeList.Any(m => m.Left.Contains(' ') || m.Right.Contains(' '));
        var mergesJson = new JsonArray();
        foreach (var (l, r) in mergeList) mergesJson.Add(asPairs ? new JsonArray(l, r) : (JsonNode)$"{l} {r}");
        return new JsonObject
        {
            ["type"] = "BPE",
            ["dropout"] = null,
            ["unk_token"] = unkToken,
            ["continuing_subword_prefix"] = null,
            ["end_of_word_suffix"] = null,
            ["fuse_unk"] = fuseUnk,
            ["byte_fallback"] = byteFallback,
            ["ignore_merges"] = ignoreMerges,
            ["vocab"] = vocab,
            ["merges"] = mergesJson,
        };
    }

    /// <summary>HF's TemplateProcessing that puts BOS before each sequence (Llama).</summary>
    public static JsonObject BosTemplate(string bos, int bosId)
    {
        JsonObject Special() => new() { ["SpecialToken"] = new JsonObject { ["id"] = bos, ["type_id"] = 0 } };
        JsonObject Seq(string name, int typeId) => new() { ["Sequence"] = new JsonObject { ["id"] = name, ["type_id"] = typeId } };
        return new JsonObject
        {
            ["type"] = "TemplateProcessing",
            ["single"] = new JsonArray(Special(), Seq("A", 0)),
            ["pair"] = new JsonArray(Special(), Seq("A", 0), Special(), Seq("B", 1)),
            ["special_tokens"] = new JsonObject
            {
                [bos] = new JsonObject { ["id"] = bos, ["ids"] = new JsonArray(bosId), ["tokens"] = new JsonArray(bos) },
            },
        };
    }

    /// <summary>The normalizer and decoder HF writes for Llama-2's SentencePiece BPE.</summary>
    public static (JsonObject Normalizer, JsonObject Decoder) LlamaSentencePiece() => (
        new JsonObject
        {
            ["type"] = "Sequence",
            ["normalizers"] = new JsonArray(
                new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
        },
        new JsonObject
        {
            ["type"] = "Sequence",
            ["decoders"] = new JsonArray(
                new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                new JsonObject { ["type"] = "ByteFallback" },
                new JsonObject { ["type"] = "Fuse" },
                new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
        });

    public static void Write(string path, IEnumerable<AddedToken> added, JsonNode? normalizer, JsonNode? preTokenizer,
        JsonNode? postProcessor, JsonNode? decoder, JsonObject model)
    {
        var addedJson = new JsonArray();
        foreach (var t in added.OrderBy(t => t.Id))
        {
            addedJson.Add(new JsonObject
            {
                ["id"] = t.Id, ["content"] = t.Content, ["single_word"] = t.SingleWord, ["lstrip"] = t.LStrip,
                ["rstrip"] = t.RStrip, ["normalized"] = t.Normalized, ["special"] = t.Special,
            });
        }
        var doc = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = addedJson,
            ["normalizer"] = normalizer?.DeepClone(),
            ["pre_tokenizer"] = preTokenizer?.DeepClone(),
            ["post_processor"] = postProcessor?.DeepClone(),
            ["decoder"] = decoder?.DeepClone(),
            ["model"] = model,
        };
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        Pargs.IO.AtomicFile.WriteAllText(path, doc.ToJsonString(Indented));
    }
}
