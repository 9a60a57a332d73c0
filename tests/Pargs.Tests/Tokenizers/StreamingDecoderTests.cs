using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

public class StreamingDecoderTests
{
    static SentencePieceTokenizer Stories() => SentencePieceTokenizer.LoadLlama2c(TokenizerTestData.Stories260K("tok512.bin"));

    [Fact]
    public void Emoji_split_across_byte_tokens_comes_out_whole()
    {
        var tok = Stories();
        var ids = tok.Encode("Lily saw 😀 and 🦄!", addBos: true);
        var decoder = new StreamingDecoder(tok);
        var outputs = ids.Select(decoder.Push).ToList();
        Assert.Equal("Lily saw 😀 and 🦄!", string.Concat(outputs));
        Assert.Equal(tok.Decode(ids), decoder.Text);
        // No output ever holds half a character: the three leading bytes of each emoji give "".
        Assert.All(outputs, o => Assert.DoesNotContain('\uFFFD', o));
        int emojiStart = Array.IndexOf(ids, 0xF0 + 3);
        Assert.Equal(["", "", ""], outputs.Skip(emojiStart).Take(3));
        Assert.Equal("😀", outputs[emojiStart + 3]);
        Assert.Equal("", decoder.Flush());
    }

    [Fact]
    public void Dummy_prefix_is_stripped_only_at_sequence_start()
    {
        var tok = Stories();
        var ids = tok.Encode("Once upon");
        var start = new StreamingDecoder(tok);
        var continuation = new StreamingDecoder(tok, atSequenceStart: false);
        foreach (var id in ids) { start.Push(id); continuation.Push(id); }
        Assert.Equal("Once upon", start.Text);
        Assert.Equal(" Once upon", continuation.Text);
    }

    [Fact]
    public void Unfinished_character_flushes_as_replacement()
    {
        var tok = Stories();
        var decoder = new StreamingDecoder(tok);
        Assert.Equal("", decoder.Push(0xF0 + 3));
        Assert.Equal("", decoder.Push(0x9F + 3));
        Assert.Equal("\uFFFD", decoder.Flush());
        Assert.Equal("", new StreamingDecoder(tok).Push(2)); // EOS is skipped
        Assert.Equal("</s>", new StreamingDecoder(tok, skipSpecial: false).Push(2));
    }
}
