namespace Pargs.Tokenizers;

/// <summary>
/// GPT-2's reversible byte ↔ printable-character map (<c>bytes_to_unicode</c>): byte-level BPE vocabularies
/// store every token as a string of these characters, e.g. 'Ġ' (U+0120) is the space byte.
/// </summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = BuildByteToChar();
    public static readonly Dictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        bool Printable(int b) => (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int next = 256;
        for (int b = 0; b < 256; b++) map[b] = Printable(b) ? (char)b : (char)next++;
        return map;
    }

    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Bytes of a vocabulary string, or null when it holds a character outside the alphabet.</summary>
    public static byte[]? TryDecode(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out bytes[i])) return null;
        }
        return bytes;
    }
}
