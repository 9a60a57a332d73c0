using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

/// <summary>The tokenizer.json pipeline on points the goldens do not name one by one: speed of long words, code points
/// outside the BMP, where BOS/EOS come from, decode details, pairs, and refusals.</summary>
public class HuggingFaceTokenizerTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"pargs-hftok-{Guid.NewGuid():N}");

    public HuggingFaceTokenizerTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Long_words_merge_in_n_log_n()
    {
        // Quadratic merging took a minute for 16,000 letters; 64,000 would take a quarter of an hour.
        foreach (var name in new[] { "llama3", "llama2", "gemma3" })
        {
            var tokenizer = TokenizerGoldens.Load(name);
            var word = string.Concat(Enumerable.Range(0, 64_000).Select(i => (char)('a' + (i * 7 + i / 13) % 26)));
            var watch = Stopwatch.StartNew();
            var ids = tokenizer.Encode(word);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"{name}: {watch.Elapsed.TotalSeconds:F1} s for a 64,000-letter word");
            Assert.Equal(word, tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void Regex_classes_see_code_points_outside_the_bmp()
    {
        // Qwen's pattern: "\p{N}" alone, "[^\r\n\p{L}\p{N}]?\p{L}+" letters. 𝟏 (U+1D7CF) is a digit, 𝐀 (U+1D400) a letter.
        var regex = new UnicodeRegex(@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+");
        string Pieces(string text)
        {
            var matches = new List<(int Start, int End)>();
            regex.Matches(text, matches);
            return string.Join("|", matches.Select(m => text[m.Start..m.End]));
        }
        Assert.Equal("x|𝟏|y", Pieces("x𝟏y"));
        Assert.Equal("𝟏|𝟐|𝟑", Pieces("𝟏𝟐𝟑"));
        Assert.Equal("𝐀𝐁𝐂| 𝑎𝑏𝑐", Pieces("𝐀𝐁𝐂 𝑎𝑏𝑐"));
        Assert.Equal("a𐍈b", Pieces("a𐍈b"));
        Assert.Equal("😀| 😀", Pieces("😀 😀"));
    }

    [Fact]
    public void Bos_and_eos_come_from_the_configuration_files()
    {
        var qwen = TokenizerGoldens.Load("qwen3");
        Assert.Null(qwen.BosId); // bos_token: null — its vocabulary's ordinary "<s>" is not a BOS
        Assert.Equal(151645, qwen.EosId); // <|im_end|>
        var qwenWithModelIds = TokenizerJson.LoadHuggingFace(QwenPath(), bosId: 151643, eosId: 151645); // Qwen3's config.json ids
        Assert.Null(qwenWithModelIds.BosId); // tokenizer_config.json's "bos_token": null wins
        Assert.Equal(qwen.Encode("Hello"), qwen.Encode("Hello", addBos: true)); // its post-processor adds nothing
        Assert.False(qwen.CleanUpTokenizationSpaces);

        var gptoss = TokenizerGoldens.Load("gptoss");
        Assert.Equal(200002, gptoss.EosId); // <|return|>, not <|endoftext|>
        Assert.Equal(199998, gptoss.BosId);
        Assert.Equal(gptoss.Encode("Hello"), gptoss.Encode("Hello", addBos: true));

        var llama3 = TokenizerGoldens.Load("llama3");
        int begin = llama3.AddedTokens.Single(t => t.Content == "<|begin_of_text|>").Id;
        Assert.Equal(begin, llama3.BosId);
        Assert.Equal(llama3.AddedTokens.Single(t => t.Content == "<|eot_id|>").Id, llama3.EosId);
        Assert.Equal([begin, .. llama3.Encode("Hi")], llama3.Encode("Hi", addBos: true));

        // generation_config.json speaks when tokenizer_config.json and config.json (the ids passed in) do not.
        var folder = Path.Combine(_dir, "gen");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(TokenizerGoldens.Fixtures, "llama2", "tokenizer.json"), Path.Combine(folder, "tokenizer.json"));
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), """{"bos_token_id": 1, "eos_token_id": [2, 0]}""");
        var fromGeneration = TokenizerJson.LoadHuggingFace(Path.Combine(folder, "tokenizer.json"));
        Assert.Equal((1, 2), (fromGeneration.BosId!.Value, fromGeneration.EosId!.Value));
        var explicitIds = TokenizerJson.LoadHuggingFace(Path.Combine(folder, "tokenizer.json"), bosId: 2, eosId: 1);
        Assert.Equal((2, 1), (explicitIds.BosId!.Value, explicitIds.EosId!.Value));

        // transformers' Llama/Gemma classes rebuild the template from add_bos_token / add_eos_token.
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            """{"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true, "add_eos_token": true}""");
        var withEos = TokenizerJson.LoadHuggingFace(Path.Combine(folder, "tokenizer.json"));
        var hi = withEos.Encode("Hi");
        Assert.Equal([1, .. hi, 2], withEos.Encode("Hi", addBos: true));
        Assert.Equal([1, .. hi, 2, 1, .. hi, 2], withEos.Encode("Hi", "Hi", addSpecialTokens: true).Ids);
        Assert.Equal([0, .. Enumerable.Repeat(0, hi.Length), 0, 1, .. Enumerable.Repeat(1, hi.Length), 1], withEos.Encode("Hi", "Hi", addSpecialTokens: true).TypeIds);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            """{"tokenizer_class": "GemmaTokenizer", "bos_token": "<s>", "add_bos_token": false}""");
        Assert.Equal(hi, TokenizerJson.LoadHuggingFace(Path.Combine(folder, "tokenizer.json")).Encode("Hi", addBos: true));

        // A bare Qwen3 tokenizer.json: names are a last resort, among special tokens only.
        var bare = Path.Combine(_dir, "bare");
        Directory.CreateDirectory(bare);
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(TokenizerGoldens.Fixtures, "qwen3", "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var file = File.Create(Path.Combine(bare, "tokenizer.json"))) gz.CopyTo(file);
        var bareQwen = TokenizerJson.LoadHuggingFace(Path.Combine(bare, "tokenizer.json"));
        Assert.Null(bareQwen.BosId);
        Assert.Equal(151643, bareQwen.EosId);
    }

    /// <summary>The unpacked Qwen3 tokenizer.json with its tokenizer_config.json (as TokenizerGoldens unpacks it).</summary>
    string QwenPath()
    {
        var folder = Path.Combine(_dir, "qwen3");
        Directory.CreateDirectory(folder);
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(TokenizerGoldens.Fixtures, "qwen3", "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var file = File.Create(Path.Combine(folder, "tokenizer.json"))) gz.CopyTo(file);
        File.Copy(Path.Combine(TokenizerGoldens.Fixtures, "qwen3", "tokenizer_config.json"), Path.Combine(folder, "tokenizer_config.json"));
        return Path.Combine(folder, "tokenizer.json");
    }

    [Fact]
    public void Decode_keeps_the_space_after_a_leading_special_token_and_cleans_up_as_configured()
    {
        var llama2 = TokenizerGoldens.Load("llama2");
        var ids = llama2.Encode("Hello world", addBos: true);
        Assert.Equal(1, ids[0]);
        Assert.Equal("<s> Hello world", llama2.Decode(ids, skipSpecial: false));
        Assert.Equal("Hello world", llama2.Decode(ids));

        var llama3 = TokenizerGoldens.Load("llama3"); // clean_up_tokenization_spaces: true
        Assert.True(llama3.CleanUpTokenizationSpaces);
        Assert.Equal("Hello, world! I'm fine.", llama3.Decode(llama3.Encode("Hello , world ! I 'm fine .")));
    }

    [Fact]
    public void Pairs_get_the_templates_special_tokens_and_type_ids()
    {
        var bert = TokenizerGoldens.Load("bert");
        Assert.IsType<WordPieceTokenizer>(bert);
        int cls = bert.AddedTokens.Single(t => t.Content == "[CLS]").Id, sep = bert.AddedTokens.Single(t => t.Content == "[SEP]").Id;
        var a = bert.Encode("The question?");
        var b = bert.Encode("An answer.");
        var pair = bert.Encode("The question?", "An answer.", addSpecialTokens: true);
        Assert.Equal([cls, .. a, sep, .. b, sep], pair.Ids);
        Assert.Equal([.. Enumerable.Repeat(0, a.Length + 2), .. Enumerable.Repeat(1, b.Length + 1)], pair.TypeIds);
        var plain = bert.Encode("The question?", "An answer.", addSpecialTokens: false);
        Assert.Equal([.. a, .. b], plain.Ids);
        Assert.Equal([.. Enumerable.Repeat(0, a.Length), .. Enumerable.Repeat(1, b.Length)], plain.TypeIds);

        var roberta = TokenizerGoldens.Load("roberta"); // <s> A </s></s> B </s>, every type id 0
        var r = roberta.Encode("Hi", "there", addSpecialTokens: true);
        Assert.Equal([0, .. roberta.Encode("Hi"), 2, 2, .. roberta.Encode("there"), 2], r.Ids);
        Assert.All(r.TypeIds, t => Assert.Equal(0, t));
        Assert.IsType<UnigramTokenizer>(TokenizerGoldens.Load("deberta"));
    }

    [Fact]
    public void Streaming_decode_of_bpe_tokenizers_equals_decode()
    {
        foreach (var name in new[] { "qwen3", "llama3", "llama2", "gemma3" })
        {
            var tokenizer = TokenizerGoldens.Load(name);
            foreach (var text in TokenizerGoldens.Corpus.Take(400))
            {
                var ids = tokenizer.Encode(text);
                var stream = new StreamingDecoder(tokenizer);
                foreach (var id in ids) stream.Push(id);
                stream.Flush();
                var expected = tokenizer.Decode(ids);
                if (tokenizer.CleanUpTokenizationSpaces) continue; // transformers' clean-up is a whole-text step
                Assert.True(expected == stream.Text, $"{name}: {text}");
            }
        }
    }

    [Fact]
    public void Saved_tokenizer_json_loads_back_to_the_same_ids()
    {
        var gemma = TokenizerGoldens.Load("gemma3");
        var saved = Path.Combine(_dir, "saved", "tokenizer.json");
        gemma.SaveTokenizerJson(saved);
        var reloaded = TokenizerJson.LoadHuggingFace(saved);
        foreach (var text in TokenizerGoldens.Corpus.Take(300)) Assert.Equal(gemma.Encode(text), reloaded.Encode(text));
        Assert.Equal((gemma.BosId, gemma.EosId), (reloaded.BosId, reloaded.EosId)); // tokenizer_config.json saved beside

        var llama3 = TokenizerGoldens.Load("llama3");
        var savedLlama3 = Path.Combine(_dir, "saved3", "tokenizer.json");
        llama3.SaveTokenizerJson(savedLlama3);
        var reloaded3 = TokenizerJson.LoadHuggingFace(savedLlama3);
        Assert.True(reloaded3.CleanUpTokenizationSpaces);
        Assert.Equal(llama3.EosId, reloaded3.EosId);
    }

    [Theory]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": 5}}""", "pre_tokenizer.type")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}}""", "pre_tokenizer.pattern.Regex")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}}""", "pre_tokenizer.behavior")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}}""", "normalizer: precompiled_charsmap is 0 bytes")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}}""", "model.dropout")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 1000000000}, "merges": []}}""", "model.vocab")]
    [InlineData("""{"model": {"type": "Unigram", "vocab": [["a", "x"]]}}""", "model.vocab[0][1]")]
    [InlineData("""{"model": {"type": "Unigram", "vocab": [["a", 0]], "unk_id": 3}}""", "model.unk_id")]
    [InlineData("""{"model": {"type": "WordPiece", "vocab": {"a": 0}}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}], "special_tokens": {}}}""", "post_processor.single[0].SpecialToken.id")]
    [InlineData("""{"model": {"type": "WordPiece", "vocab": {"a": 0}}, "decoder": {"type": "CTC"}}""", "decoder.type")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": "x", "content": "a"}]}""", "added_tokens[0].id")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Lowercase"}, "truncation": {"max_length": 5}}""", "truncation")]
    [InlineData("""{"model": {"type": "WordPiece", "vocab": {"a": 0}}, "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 70000], "sep": ["[SEP]", 0]}}""", "post_processor")]
    [InlineData("""{"model": {"type": "WordPiece", "vocab": {"a": 0}}, "post_processor": {"type": "Sequence", "processors": [{"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"x": {"id": "x", "ids": [-1]}}}]}}""", "post_processor")]
    [InlineData("""[]""", "$: expected an object, got []")]
    [InlineData("""{"model": {"type": "BPE", "type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "not valid JSON")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 5000000, "content": "x"}]}""", "added_tokens[0].id")]
    public void Bad_files_are_one_line_errors_naming_the_field(string json, string field)
    {
        var path = Path.Combine(_dir, "tokenizer.json");
        File.WriteAllText(path, json);
        var e = Assert.Throws<PargsException>(() => TokenizerJson.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(field, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Configuration_files_that_name_unknown_tokens_are_errors()
    {
        var folder = Path.Combine(_dir, "cfg");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(TokenizerGoldens.Fixtures, "llama2", "tokenizer.json"), Path.Combine(folder, "tokenizer.json"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"eos_token": {"content": "<nope>"}}""");
        var e = Assert.Throws<PargsException>(() => TokenizerJson.Load(Path.Combine(folder, "tokenizer.json")));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains("eos_token", e.Message);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"eos_token": 5}""");
        Assert.Throws<PargsException>(() => TokenizerJson.Load(Path.Combine(folder, "tokenizer.json")));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "[]");
        Assert.Throws<PargsException>(() => TokenizerJson.Load(Path.Combine(folder, "tokenizer.json")));
    }

    [Theory]
    [InlineData("Removed", false, "the|final|countdown")]
    [InlineData("Isolated", false, "the|-|final|-|-|countdown")]
    [InlineData("MergedWithPrevious", false, "the-|final-|-|countdown")]
    [InlineData("MergedWithNext", false, "the|-final|-|-countdown")]
    [InlineData("Contiguous", false, "the|-|final|--|countdown")]
    [InlineData("Removed", true, "-|-|-")]
    public void Split_behaviours_cut_as_the_rust_library_documents(string behavior, bool invert, string expected)
    {
        // The example of the Rust library's SplitDelimiterBehavior documentation: "the-final--countdown" split on '-'.
        // Every piece is a vocabulary entry and ignore_merges takes it whole, so the ids show the pieces.
        string[] pieces = ["the", "final", "countdown", "-", "the-", "final-", "-final", "-countdown", "--"];
        var vocab = new JsonObject();
        foreach (var c in "thefinalcoudw-".Distinct()) vocab[c.ToString()] = vocab.Count;
        foreach (var p in pieces) if (!vocab.ContainsKey(p)) vocab[p] = vocab.Count;
        var doc = new JsonObject
        {
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["String"] = "-" }, ["behavior"] = behavior, ["invert"] = invert },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray(), ["ignore_merges"] = true },
        };
        var path = Path.Combine(_dir, "split.json");
        File.WriteAllText(path, doc.ToJsonString());
        var tokenizer = TokenizerJson.Load(path);
        Assert.Equal(expected, string.Join("|", tokenizer.Encode("the-final--countdown").Select(id => tokenizer.Decode([id]))));
    }
}
