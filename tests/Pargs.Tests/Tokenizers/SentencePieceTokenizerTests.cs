using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

public class SentencePieceTokenizerTests
{
    static readonly int[] StoryIds = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426];

    static SentencePieceTokenizer Stories() => SentencePieceTokenizer.LoadLlama2c(TokenizerTestData.Stories260K("tok512.bin"));

    [Fact]
    public void Stories260K_encodes_like_llama2c()
    {
        var tok = Stories();
        Assert.Equal(512, tok.VocabSize);
        Assert.Equal(1, tok.BosId);
        Assert.Equal(2, tok.EosId);
        Assert.Equal([1, 403, 407, 261, 378], tok.Encode("Once upon a time", addBos: true));
        Assert.Equal([403, 407, 261, 378], tok.Encode("Once upon a time"));
        Assert.Empty(tok.Encode(""));
    }

    [Fact]
    public void Stories260K_decodes_and_round_trips()
    {
        var tok = Stories();
        var text = tok.Decode(StoryIds);
        Assert.StartsWith("Once upon a time, there was a little girl named Lily", text);
        Assert.Equal(StoryIds, tok.Encode(text, addBos: true));
        Assert.Equal("<s>Once upon", tok.Decode([1, 403, 407], skipSpecial: false));
    }

    [Fact]
    public void Unknown_code_points_fall_back_to_byte_tokens()
    {
        var tok = Stories();
        var ids = tok.Encode("😀");
        // "😀" is F0 9F 98 80; llama2.c's byte ids are byte + 3.
        Assert.Equal([0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3], ids.Skip(ids.Length - 4));
        Assert.Equal([(byte)0x0A], tok.TokenBytes(0x0A + 3));
        Assert.Equal("😀", tok.Decode(ids));
        Assert.Empty(tok.TokenBytes(1));
        Assert.True(tok.IsSpecial(2));
        Assert.False(tok.IsSpecial(403));
    }

    [Fact]
    public void Merges_pick_the_highest_score_leftmost_on_ties()
    {
        // "▁" a b: pairs "▁a" (score 1) and "ab" (score 2) → "ab" first, then "▁ab" (score 0) is allowed.
        string[] pieces = ["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab", "aa"];
        float[] scores = [0, 0, 0, -1, -2, -3, 1, 2, 0, 5];
        var tok = SentencePieceTokenizer.FromVocabulary(pieces, scores, null, null, null);
        Assert.Equal(1, tok.BosId);
        Assert.Equal([8], tok.Encode("ab"));
        // "▁aaa": "aa" (5) beats "▁a" (1); of the two "aa" pairs the leftmost merges → [▁, aa, a] → no more.
        Assert.Equal([3, 9, 4], tok.Encode("aaa"));
        // Without byte pieces an unknown character becomes <unk>.
        Assert.Equal([3, 0], tok.Encode("z"));
    }

    [Fact]
    public void Saved_tokenizer_json_gives_identical_ids()
    {
        var tok = Stories();
        var path = Path.Combine(Path.GetTempPath(), $"pargs-sp-{Guid.NewGuid():N}", "tokenizer.json");
        try
        {
            tok.SaveTokenizerJson(path);
            var reloaded = TokenizerJson.Load(path);
            Assert.IsType<SentencePieceBpeTokenizer>(reloaded);
            Assert.Equal(tok.VocabSize, reloaded.VocabSize);
            Assert.Equal(tok.BosId, reloaded.BosId);
            Assert.Equal(tok.EosId, reloaded.EosId);
            int count = 0;
            foreach (var text in TokenizerTestData.VariedStrings())
            {
                var expected = tok.Encode(text, addBos: true);
                Assert.Equal(expected, reloaded.Encode(text, addBos: true));
                Assert.Equal(tok.Decode(expected), reloaded.Decode(expected));
                count++;
            }
            Assert.True(count > 300);
            // The reloaded tokenizer saves to the same file again.
            var again = path + ".again.json";
            ((SentencePieceBpeTokenizer)reloaded).SaveTokenizerJson(again);
            Assert.Equal(File.ReadAllText(path), File.ReadAllText(again));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    [Fact]
    public void Bad_inputs_are_user_errors()
    {
        var missing = Assert.Throws<PargsException>(() => SentencePieceTokenizer.LoadLlama2c("/nonexistent/tok.bin"));
        Assert.Contains("/nonexistent/tok.bin", missing.Message);
        Assert.Throws<PargsException>(() => SentencePieceTokenizer.FromVocabulary(["a", "b"], [0f], null, null, null));
    }
}
