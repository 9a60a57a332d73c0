using System.Text;

namespace Pargs.Tokenizers;

/// <summary>A tokenizer.json decoder: token strings → token strings; the text is their concatenation.</summary>
internal abstract class TokenDecoder
{
    public abstract List<string> DecodeChain(List<string> tokens);
}

internal sealed class SequenceDecoder(IReadOnlyList<TokenDecoder> decoders) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        foreach (var d in decoders) tokens = d.DecodeChain(tokens);
        return tokens;
    }
}

/// <summary>ByteLevel: every character back to its byte (a token with a character outside the alphabet keeps its own UTF-8), then lossy UTF-8.</summary>
internal sealed class ByteLevelDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            var decoded = ByteLevelAlphabet.TryDecode(token);
            bytes.AddRange(decoded ?? Encoding.UTF8.GetBytes(token));
        }
        return [Encoding.UTF8.GetString(bytes.ToArray())];
    }
}

/// <summary>Metaspace: "▁" back to spaces, except a leading one of the first token when a prefix was prepended.</summary>
internal sealed class MetaspaceDecoder(char replacement, PrependScheme scheme) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var sb = new StringBuilder(tokens[i].Length);
            foreach (var c in tokens[i])
            {
                if (c != replacement) sb.Append(c);
                else if (!(i == 0 && scheme != PrependScheme.Never)) sb.Append(' ');
            }
            result.Add(sb.ToString());
        }
        return result;
    }
}

/// <summary>Replace: in each token, every match of the pattern by the content.</summary>
internal sealed class ReplaceDecoder(SplitPattern pattern, string content) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) =>
        tokens.Select(t => ReplaceNormalizer.Replace(pattern, content, t)).ToList();
}

/// <summary>ByteFallback: runs of "&lt;0xAB&gt;" tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
internal sealed class ByteFallbackDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        void Flush()
        {
            if (pending.Count == 0) return;
            try { result.Add(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(pending.ToArray())); }
            catch (DecoderFallbackException) { for (int i = 0; i < pending.Count; i++) result.Add("\uFFFD"); }
            pending.Clear();
        }
        foreach (var token in tokens)
        {
            if (TokenText.ByteOfPiece(token) is int b && token.StartsWith("<0x", StringComparison.Ordinal)) { pending.Add((byte)b); continue; }
            Flush();
            result.Add(token);
        }
        Flush();
        return result;
    }
}

internal sealed class FuseDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Strip: up to <c>start</c> leading and <c>stop</c> trailing copies of a character from each token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.Select(token =>
    {
        int from = 0, to = token.Length;
        while (from < Math.Min(start, token.Length) && token[from] == content) from++;
        for (int i = 0; i < stop && to > from && token[to - 1] == content; i++) to--;
        return token[from..to];
    }).ToList();
}

/// <summary>WordPiece: "##" continuations glued to the previous token, others after a space; optional cleanup.</summary>
internal sealed class WordPieceDecoder(string prefix, bool cleanup) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (i != 0) token = token.StartsWith(prefix, StringComparison.Ordinal) ? token[prefix.Length..] : " " + token;
            result.Add(cleanup ? CleanUp.WordPiece(token) : token);
        }
        return result;
    }
}

/// <summary>BPEDecoder: the end-of-word suffix becomes a space (nothing after the last token).</summary>
internal sealed class BpeSuffixDecoder(string suffix) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) =>
        tokens.Select((t, i) => t.Replace(suffix, i == tokens.Count - 1 ? "" : " ")).ToList();
}

/// <summary>The space clean-ups of decoding: the WordPiece decoder's, and transformers' clean_up_tokenization_spaces.</summary>
internal static class CleanUp
{
    public static string WordPiece(string text) => text.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!")
        .Replace(" ,", ",").Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" do not", " don't")
        .Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

    /// <summary>transformers' <c>clean_up_tokenization</c>, applied after decoding when tokenizer_config.json asks.</summary>
    public static string TokenizationSpaces(string text) => text.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!")
        .Replace(" ,", ",").Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m")
        .Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}
