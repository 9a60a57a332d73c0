using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

/// <summary>
/// The compact vocabulary tables (one UTF-8 array of the pieces with an id table over it; BPE merges in rank arrays with
/// a table of ranks; a BPE tokenizer.json's vocabulary and merges written back from those tables instead of kept as a
/// JSON tree) behave as the dictionaries and the kept tree did: first id wins for a repeated piece, lookups of pairs and
/// of non-ASCII pieces, byte pieces, a lone surrogate refused with one line, and a saved tokenizer.json equal to the file
/// it was read from, node for node (Llama 3's 280k merges as "a b" strings, Qwen3's as pairs).
/// </summary>
public class CompactTokenizerTableTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"pargs-compacttok-{Guid.NewGuid():N}");

    public CompactTokenizerTableTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Sentence_piece_lookups_merge_pairs_and_keep_the_first_of_repeated_pieces()
    {
        // Ids: 0 <unk>, 1 <s>, 2 </s>, byte pieces for "é"'s two bytes, then letters, merged pieces and a repeat of "▁a".
        string[] pieces = ["<unk>", "<s>", "</s>", "<0xC3>", "<0xA9>", "▁", "a", "b", "ü", "▁a", "ab", "▁ab", "▁a", "üb", "▁üb"];
        float[] scores = [0, 0, 0, 0, 0, -1, -2, -3, -4, -5, -6, -7, 10, -8, -9];
        var tok = SentencePieceTokenizer.FromVocabulary(pieces, scores, null, 1, 2);

        // "▁a" is ids 9 and 12; the lookup finds 9 (as the Dictionary filled with TryAdd in id order did): "a" is [9], not [12].
        Assert.Equal([9], tok.Encode("a"));
        // "▁" "a" "b": "▁a" (-5) merges before "ab" (-6), then "▁a" + "b" is "▁ab".
        Assert.Equal([1, 11], tok.Encode("ab", addBos: true));
        // Non-ASCII pieces are found by their UTF-8: "ü" + "b" → "üb" → "▁üb"; "é" has no piece and falls back to its bytes.
        Assert.Equal([14, 5, 3, 4], tok.Encode("üb é"));
        Assert.Equal(" üb é", Encoding.UTF8.GetString([.. tok.TokenBytes(14), .. tok.TokenBytes(5), .. tok.TokenBytes(3), .. tok.TokenBytes(4)]));
        Assert.Equal("üb é", tok.Decode([14, 5, 3, 4]));
        Assert.Equal([0xC3], tok.TokenBytes(3));
        Assert.Empty(tok.TokenBytes(1)); // control pieces have no bytes
        Assert.Equal("<s>", tok.Decode([1], skipSpecial: false));
        Assert.Equal(pieces, tok.Pieces.ToArray()); // the pieces as given, repeats included
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.TokenBytes(pieces.Length));
    }

    [Fact]
    public void A_piece_that_is_not_valid_unicode_is_refused_in_one_line()
    {
        var e = Assert.Throws<PargsException>(() => SentencePieceTokenizer.FromVocabulary(["<unk>", "a\ud800"], [0, 0], null, null, null));
        Assert.Contains("token 1", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("llama3")] // 128,256 tokens, 280,147 merges written as "a b"
    [InlineData("qwen3")]  // 151,643 tokens, 151,387 merges written as ["a", "b"]
    public void A_saved_bpe_tokenizer_json_equals_the_file_it_was_read_from(string name)
    {
        string source = Unpacked(name);
        var tokenizer = TokenizerJson.LoadHuggingFace(source);
        string saved = Path.Combine(_dir, name + "-saved", "tokenizer.json");
        tokenizer.SaveTokenizerJson(saved);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(File.ReadAllText(source)), JsonNode.Parse(File.ReadAllText(saved))),
            $"{name}: the saved tokenizer.json differs from the original");
        // Saved twice from one tokenizer: the vocabulary and merges are rebuilt each time, the kept part is not consumed.
        string again = Path.Combine(_dir, name + "-again", "tokenizer.json");
        tokenizer.SaveTokenizerJson(again);
        Assert.Equal(File.ReadAllText(saved), File.ReadAllText(again));
        var reloaded = TokenizerJson.LoadHuggingFace(saved);
        foreach (var text in TokenizerGoldens.Corpus.Take(100)) Assert.Equal(tokenizer.Encode(text), reloaded.Encode(text));
    }

    [Fact]
    public void A_vocabulary_out_of_id_order_and_repeated_merges_are_saved_as_read()
    {
        // Ids not in file order, and the merge "a b" listed twice: the tables cannot spell these, so the tree is kept whole.
        var json = """
            {"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
             "model": {"type": "BPE", "dropout": null, "unk_token": null, "vocab": {"b": 1, "a": 0, "ab": 2},
                       "merges": ["a b", "a b"]}}
            """;
        string path = Path.Combine(_dir, "odd", "tokenizer.json");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, json);
        var tokenizer = TokenizerJson.LoadHuggingFace(path);
        Assert.Equal([2], tokenizer.Encode("ab"));
        string saved = Path.Combine(_dir, "odd-saved", "tokenizer.json");
        tokenizer.SaveTokenizerJson(saved);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(File.ReadAllText(saved))));
    }

    /// <summary>The fixture's tokenizer.json, unpacked from its .gz into this test's folder.</summary>
    string Unpacked(string name)
    {
        string dir = Path.Combine(TokenizerGoldens.Fixtures, name);
        string plain = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(plain)) return plain;
        string target = Path.Combine(_dir, name, "tokenizer.json");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(dir, "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var file = File.Create(target)) gz.CopyTo(file);
        return target;
    }
}
