using System.Globalization;
using System.Text;

namespace Pargs.Tokenizers;

/// <summary>Helpers shared by the tokenizers: SentencePiece piece bytes and ids → text.</summary>
internal static class TokenText
{
    public const char SpaceMarker = '\u2581'; // "▁", SentencePiece's visible space

    /// <summary>The byte of a "&lt;0xAB&gt;" byte-fallback piece, or null for any other piece.</summary>
    public static int? ByteOfPiece(string piece) => ByteOfPiece(piece.AsSpan());

    /// <summary>The byte of a "&lt;0xAB&gt;" byte-fallback piece, or null for any other piece.</summary>
    public static int? ByteOfPiece(ReadOnlySpan<char> piece)
    {
        if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>' &&
            byte.TryParse(piece.Slice(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
            return b;
        return null;
    }

    public static string PieceOfByte(int b) => $"<0x{b:X2}>";

    /// <summary>Raw bytes of a SentencePiece piece: byte pieces are their byte, "▁" is a space.</summary>
    public static byte[] SentencePieceBytes(string piece) =>
        ByteOfPiece(piece) is int b ? [(byte)b] : Encoding.UTF8.GetBytes(piece.Replace(SpaceMarker, ' '));

    /// <summary>Raw bytes of a SentencePiece piece given as UTF-8: byte pieces are their byte, "▁" (E2 96 81) is a space.</summary>
    public static byte[] SentencePieceBytes(ReadOnlySpan<byte> pieceUtf8)
    {
        if (pieceUtf8.Length == 6 && pieceUtf8.StartsWith("<0x"u8) && pieceUtf8[5] == (byte)'>' &&
            byte.TryParse(pieceUtf8.Slice(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
            return [b];
        ReadOnlySpan<byte> marker = "\u2581"u8;
        var bytes = new List<byte>(pieceUtf8.Length);
        // UTF-8 is self-synchronizing: E2 96 81 occurs only as the encoding of "▁" itself.
        for (int at = 0; at < pieceUtf8.Length;)
        {
            if (pieceUtf8[at..].StartsWith(marker)) { bytes.Add((byte)' '); at += marker.Length; }
            else bytes.Add(pieceUtf8[at++]);
        }
        return bytes.ToArray();
    }

    /// <summary>
    /// Joins token bytes and decodes UTF-8 (invalid sequences become U+FFFD). Special tokens are skipped or
    /// written as their text; with <paramref name="stripDummyPrefix"/> the leading space of the first
    /// ordinary token is dropped, as llama2.c does after BOS and HF Llama's Strip decoder does.
    /// </summary>
    public static string Decode(ITokenizer tokenizer, IEnumerable<int> ids, bool skipSpecial, bool stripDummyPrefix,
        Func<int, string> specialText)
    {
        var bytes = new List<byte>();
        bool first = true;
        foreach (var id in ids)
        {
            if (tokenizer.IsSpecial(id))
            {
                if (!skipSpecial) bytes.AddRange(Encoding.UTF8.GetBytes(specialText(id)));
                continue;
            }
            var tokenBytes = tokenizer.TokenBytes(id);
            int skip = first && stripDummyPrefix && tokenBytes.Length > 0 && tokenBytes[0] == (byte)' ' ? 1 : 0;
            if (tokenBytes.Length > 0) first = false;
            for (int i = skip; i < tokenBytes.Length; i++) bytes.Add(tokenBytes[i]);
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}

/// <summary>Tokenizers that prepend SentencePiece's dummy-prefix space, which decoding removes again.</summary>
internal interface IAddsDummyPrefix
{
    bool AddsDummyPrefix { get; }
}
