using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

public class TokenizerJsonTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"pargs-tokjson-{Guid.NewGuid():N}");

    public TokenizerJsonTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Byte_level_bpe_matches_tiktoken_gpt2()
    {
        var tiktoken = TiktokenTokenizer.CreateForModel("gpt2");
        var path = Gpt2TokenizerJson.Write(_dir);
        var tok = TokenizerJson.Load(path);
        Assert.IsType<ByteLevelBpeTokenizer>(tok);
        Assert.Equal(50257, tok.VocabSize);
        Assert.Equal(50256, tok.EosId);
        Assert.Null(tok.BosId);
        int count = 0;
        foreach (var text in TokenizerTestData.VariedStrings())
        {
            var expected = tiktoken.EncodeToIds(text).ToArray();
            Assert.Equal(expected, tok.Encode(text));
            Assert.Equal(text, tok.Decode(expected));
            count++;
        }
        Assert.True(count > 300);

        // Added special tokens are cut out of the text before BPE.
        var withEot = tok.Encode("Hello<|endoftext|> world");
        Assert.Equal([.. tiktoken.EncodeToIds("Hello"), 50256, .. tiktoken.EncodeToIds(" world")], withEot);
        Assert.True(tok.IsSpecial(50256));
        Assert.Empty(tok.TokenBytes(50256));
        Assert.Equal("Hello world", tok.Decode(withEot));
        Assert.Equal("Hello<|endoftext|> world", tok.Decode(withEot, skipSpecial: false));
        Assert.Equal(" world"u8.ToArray(), tok.TokenBytes(tiktoken.EncodeToIds(" world")[0]));

        // Saved and reloaded: same ids.
        var saved = Path.Combine(_dir, "saved", "tokenizer.json");
        tok.SaveTokenizerJson(saved);
        var reloaded = TokenizerJson.Load(saved, bosId: 50256, eosId: 50256);
        Assert.Equal(50256, reloaded.BosId);
        foreach (var text in TokenizerTestData.VariedStrings(randomCount: 50, seed: 7))
            Assert.Equal(tok.Encode(text), reloaded.Encode(text));
        Assert.Equal([50256, .. tok.Encode("Hi")], reloaded.Encode("Hi", addBos: true));
    }

    [Fact]
    public void Llama3_style_split_regex_and_template_bos_are_read()
    {
        // A tiny byte-level vocabulary: all 256 byte tokens, merges "Ġ t", "h e", "Ġt he"; Llama-3's Split regex.
        var map = Gpt2TokenizerJson.ByteToChar();
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[map[b].ToString()] = b;
        vocab["Ġt"] = 256; vocab["he"] = 257; vocab["Ġthe"] = 258;
        var pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        var doc = new JsonObject
        {
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 259, ["content"] = "<|begin_of_text|>", ["special"] = true },
                new JsonObject { ["id"] = 260, ["content"] = "<|end_of_text|>", ["special"] = true }),
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["special_tokens"] = new JsonObject
                {
                    ["<|begin_of_text|>"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["ids"] = new JsonArray(259) },
                },
            },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray(new JsonArray("Ġ", "t"), "h e", "Ġt he") },
        };
        var path = Path.Combine(_dir, "llama3.json");
        File.WriteAllText(path, doc.ToJsonString());
        var tok = TokenizerJson.Load(path);
        Assert.Equal(259, tok.BosId);
        Assert.Equal(260, tok.EosId);
        // Pre-tokens "t", " the", " ", "123", "45" (digits in threes); bytes are ids 0..255.
        Assert.Equal([259, 't', 258, ' ', '1', '2', '3', '4', '5'], tok.Encode("t the 12345", addBos: true));
        Assert.Equal("t the 12345", tok.Decode(tok.Encode("t the 12345<|end_of_text|>", addBos: true)));
    }

    [Fact]
    public void Unsupported_and_missing_files_name_the_problem()
    {
        var missing = Assert.Throws<PargsException>(() => TokenizerJson.Load(Path.Combine(_dir, "nope.json")));
        Assert.Contains("nope.json", missing.Message);

        var wordLevel = Path.Combine(_dir, "wordlevel.json");
        File.WriteAllText(wordLevel, """{"model": {"type": "WordLevel", "vocab": {"a": 0}}}""");
        var e = Assert.Throws<PargsException>(() => TokenizerJson.Load(wordLevel));
        Assert.Contains("wordlevel.json", e.Message);
        Assert.Contains("model.type", e.Message);
        Assert.Contains("WordLevel", e.Message);

        var badMerge = Path.Combine(_dir, "badmerge.json");
        File.WriteAllText(badMerge, """{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}""");
        var m = Assert.Throws<PargsException>(() => TokenizerJson.Load(badMerge));
        Assert.Contains("model.merges[0]", m.Message);
    }
}
