using System.Text;

namespace Pargs.Tokenizers;

/// <summary>
/// Ids in, text out, one token at a time: a token may end in the middle of a UTF-8 character (byte-fallback
/// pieces, byte-level BPE), so incomplete bytes are held back until the character completes. With a
/// SentencePiece tokenizer the dummy-prefix space of the first token is dropped when the ids start a
/// sequence (as <see cref="ITokenizer.Decode"/> does), and kept when they continue a prompt.
/// </summary>
public sealed class StreamingDecoder
{
    readonly ITokenizer _tokenizer;
    readonly bool _skipSpecial;
    readonly Decoder _utf8 = Encoding.UTF8.GetDecoder();
    readonly StringBuilder _text = new();
    bool _stripNextSpace;

    public StreamingDecoder(ITokenizer tokenizer, bool atSequenceStart = true, bool skipSpecial = true)
    {
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecial;
        _stripNextSpace = atSequenceStart && tokenizer is IAddsDummyPrefix { AddsDummyPrefix: true };
    }

    /// <summary>All text completed so far.</summary>
    public string Text => _text.ToString();

    /// <summary>Characters completed so far (the length of <see cref="Text"/>, without building it).</summary>
    public int Length => _text.Length;

    /// <summary>Completed text from character <paramref name="start"/> on.</summary>
    public string TextFrom(int start) => _text.ToString(start, _text.Length - start);

    /// <summary>
    /// Whether the last tokens ended inside a character: decoding the whole sequence would show those bytes as
    /// one U+FFFD (a valid but unfinished UTF-8 sequence is one maximal subpart), which <see cref="Flush"/> would
    /// emit. Asking does not change the decoder's state.
    /// </summary>
    public bool EndsInsideCharacter => _utf8.GetCharCount(ReadOnlySpan<byte>.Empty, flush: true) > 0;

    /// <summary>Adds one token; returns the text it completes (possibly empty).</summary>
    public string Push(int id)
    {
        string piece;
        if (_tokenizer.IsSpecial(id))
        {
            if (_skipSpecial) return "";
            piece = Chars([], flush: true) + _tokenizer.Decode([id], skipSpecial: false);
        }
        else
        {
            var bytes = _tokenizer.TokenBytes(id);
            int skip = 0;
            if (_stripNextSpace && bytes.Length > 0)
            {
                skip = bytes[0] == (byte)' ' ? 1 : 0;
                _stripNextSpace = false;
            }
            piece = Chars(bytes.AsSpan(skip), flush: false);
        }
        _text.Append(piece);
        return piece;
    }

    /// <summary>Ends the stream: bytes of an unfinished character come out as U+FFFD.</summary>
    public string Flush()
    {
        var rest = Chars([], flush: true);
        _text.Append(rest);
        return rest;
    }

    string Chars(ReadOnlySpan<byte> bytes, bool flush)
    {
        var chars = new char[_utf8.GetCharCount(bytes, flush)];
        int n = _utf8.GetChars(bytes, chars, flush);
        return new string(chars, 0, n);
    }
}
