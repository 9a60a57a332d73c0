using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Tokenizers;

/// <summary>
/// BOS, EOS and decode clean-up for a tokenizer.json, from the files transformers reads beside it — never
/// guessed from token names when they exist. In order: tokenizer_config.json's bos_token / eos_token (a null
/// there means "none": Qwen3 has no BOS, although its config.json names a bos_token_id), then ids given by the
/// caller (the model's config.json), then generation_config.json's bos_token_id / eos_token_id (the first of
/// a list), then for BOS the special token the post-processor puts before the text. Only a bare tokenizer.json, with neither configuration file,
/// falls back to the conventional names, and then only among its special added tokens (an ordinary
/// vocabulary entry "&lt;s&gt;" is text, not a control token).
/// </summary>
internal static class TokenizerConfig
{
    public const string FileName = "tokenizer_config.json";
    public const string GenerationFileName = "generation_config.json";

    static readonly string[] BosNames = ["<s>", "<|begin_of_text|>", "<bos>", "[CLS]"];
    static readonly string[] EosNames = ["</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", "<eos>", "[SEP]"];

    public static SpecialTokenSettings Read(string tokenizerPath, TokenizerPipeline pipeline, int? bosId, int? eosId)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(tokenizerPath))!;
        var configPath = Path.Combine(dir, FileName);
        var generationPath = Path.Combine(dir, GenerationFileName);
        var config = ReadObject(configPath);
        var generation = ReadObject(generationPath);
        try
        {
            return Read(tokenizerPath, pipeline, bosId, eosId, config, configPath, generation, generationPath);
        }
        catch (ArgumentException e)
        {
            // System.Text.Json reports a property name given twice only when the object is first read.
            throw new PargsException($"{configPath} / {generationPath}: malformed JSON object: {e.Message}", e);
        }
    }

    static SpecialTokenSettings Read(string tokenizerPath, TokenizerPipeline pipeline, int? bosId, int? eosId,
        JsonObject? config, string configPath, JsonObject? generation, string generationPath)
    {

        bool cleanUp = false;
        if (config is not null)
        {
            // The tokenizer's own configuration names its tokens; the model's config.json ids come second.
            if (config.TryGetPropertyValue("bos_token", out var bos))
                bosId = bos is null ? null : IdOf(TokenContent(bos, configPath, "bos_token"), pipeline, configPath, "bos_token");
            if (config.TryGetPropertyValue("eos_token", out var eos))
                eosId = eos is null ? null : IdOf(TokenContent(eos, configPath, "eos_token"), pipeline, configPath, "eos_token");
            cleanUp = config["clean_up_tokenization_spaces"] is JsonValue c && c.GetValueKind() == JsonValueKind.True;
        }
        bool bosSettled = bosId is not null || config?.ContainsKey("bos_token") == true;
        bool eosSettled = eosId is not null || config?.ContainsKey("eos_token") == true;
        if (generation is not null)
        {
            if (!bosSettled && generation["bos_token_id"] is JsonNode b) { bosId = FirstId(b, generationPath, "bos_token_id"); bosSettled = true; }
            if (!eosSettled && generation["eos_token_id"] is JsonNode e) { eosId = FirstId(e, generationPath, "eos_token_id"); eosSettled = true; }
        }
        if (!bosSettled && pipeline.PostProcessor?.SingleSpecials.Before is { Count: > 0 } before && pipeline.Model is BpeModel)
        {
            bosId = before[0];
            bosSettled = true;
        }
        bool bare = config is null && generation is null;
        if (bare)
        {
            if (!bosSettled) bosId = ByName(BosNames, pipeline);
            if (!eosSettled) eosId = ByName(EosNames, pipeline);
        }
        int size = Math.Max(pipeline.Model.Size, pipeline.AddedTokens.Count == 0 ? 0 : pipeline.AddedTokens.Max(t => t.Id) + 1);
        foreach (var (name, id) in new[] { ("BOS", bosId), ("EOS", eosId) })
        {
            if (id is int i && (i < 0 || i >= size))
                throw new PargsException($"{tokenizerPath}: {name} id {i} is outside the vocabulary of {size} tokens.");
        }
        return new SpecialTokenSettings(bosId, eosId, cleanUp, PrependBosWithoutTemplate: bare)
        {
            PostProcessor = config is null ? null : LlamaStyleTemplate(config, configPath, bosId, eosId),
            Config = config,
        };
    }

    /// <summary>
    /// transformers' Llama and Gemma fast tokenizers rebuild the post-processor from tokenizer_config.json's
    /// add_bos_token (default true) and add_eos_token (default false): single "BOS $A EOS", pair
    /// "BOS $A EOS BOS $B:1 EOS:1", each special only when asked for. Other classes keep the file's post-processor.
    /// </summary>
    static PostProcessor? LlamaStyleTemplate(JsonObject config, string configPath, int? bosId, int? eosId)
    {
        var tokenizerClass = config["tokenizer_class"] is JsonValue c && c.GetValueKind() == JsonValueKind.String ? c.GetValue<string>() : null;
        if (tokenizerClass is not ("LlamaTokenizer" or "LlamaTokenizerFast" or "GemmaTokenizer" or "GemmaTokenizerFast" or "CodeLlamaTokenizer" or "CodeLlamaTokenizerFast"))
            return null;
        bool addBos = Flag(config, "add_bos_token", true, configPath), addEos = Flag(config, "add_eos_token", false, configPath);
        if (addBos && bosId is null) throw new PargsException($"{configPath}: add_bos_token is true but there is no bos_token.");
        if (addEos && eosId is null) throw new PargsException($"{configPath}: add_eos_token is true but there is no eos_token.");
        var specials = new Dictionary<string, int[]>();
        if (addBos) specials["bos"] = [bosId!.Value];
        if (addEos) specials["eos"] = [eosId!.Value];
        var single = new List<TemplatePiece>();
        if (addBos) single.Add(new TemplatePiece(false, false, "bos", 0));
        single.Add(new TemplatePiece(true, false, null, 0));
        if (addEos) single.Add(new TemplatePiece(false, false, "eos", 0));
        var pair = new List<TemplatePiece>(single);
        if (addBos) pair.Add(new TemplatePiece(false, false, "bos", 1));
        pair.Add(new TemplatePiece(true, true, null, 1));
        if (addEos) pair.Add(new TemplatePiece(false, false, "eos", 1));
        return new TemplateProcessor(single, pair, specials);
    }

    static bool Flag(JsonObject config, string field, bool fallback, string path) => config[field] switch
    {
        null => fallback,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Null => fallback,
        _ => throw new PargsException($"{path}: {field}: expected true or false."),
    };

    static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path)) return null;
        return Pargs.Json.CheckedJson.ReadFile(path).AsObject();
    }

    /// <summary>A special token as tokenizer_config.json writes it: a string, or an object with "content".</summary>
    static string TokenContent(JsonNode node, string path, string field) => node switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonObject o when o["content"] is JsonValue c && c.GetValueKind() == JsonValueKind.String => c.GetValue<string>(),
        _ => throw new PargsException($"{path}: {field}: expected a string or an object with \"content\"."),
    };

    static int IdOf(string content, TokenizerPipeline pipeline, string path, string field)
    {
        foreach (var t in pipeline.AddedTokens) if (t.Content == content) return t.Id;
        if (pipeline.Model.TryGetId(content, out var id)) return id;
        throw new PargsException($"{path}: {field}: \"{content}\" is neither an added token nor in the vocabulary of the tokenizer.json beside it.");
    }

    static int FirstId(JsonNode node, string path, string field)
    {
        var first = node is JsonArray list ? (list.Count > 0 ? list[0] : null) : node;
        return first is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var id) ? id
            : throw new PargsException($"{path}: {field}: expected an id or a non-empty list of ids.");
    }

    static int? ByName(string[] names, TokenizerPipeline pipeline)
    {
        foreach (var name in names)
            foreach (var t in pipeline.AddedTokens)
                if (t.Special && t.Content == name) return t.Id;
        return null;
    }
}
