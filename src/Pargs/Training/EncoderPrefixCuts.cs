using System.Text;
using Pargs.Tokenizers;

namespace Pargs.Training;

/// <summary>
/// Where the prefixes of a response end, for partial training of an encoder reward model. The unit is the paper's:
/// the reward model's own tokens — prefix i is the response text covered by its first i tokens (the tokens of the
/// response encoded alone, without special tokens). An encoder reads text, and decoding feeds it text prefixes
/// re-encoded from scratch, so each prefix is kept as <b>text</b> (cut after the last visible character of token i) and
/// encoded as decoding encodes it, never as a truncated id list (a word cut mid-token re-tokenizes differently).
/// <para>The tokenizer gives no character offsets, so a cut is found by counting visible (non-whitespace) characters:
/// token i ends after the n-th visible character of the response, n being the visible characters of the surface text
/// of tokens 1..i (their bytes as <see cref="HuggingFaceTokenizer.TokenBytes"/> spells them). Tokens without text
/// ([UNK], byte pieces of an unfinished character) count one character, resp. none until the character completes.
/// Where a normalizer changes the count (NFKC ligatures, NFD accents stripped) a cut can land a character off; every
/// prefix is still a true prefix of the response, cuts never go back, and the last one is the whole response.</para>
/// </summary>
public static class EncoderPrefixCuts
{
    /// <summary>The end (a UTF-16 index into <paramref name="response"/>) of each of its tokens' prefixes; empty for an empty response.</summary>
    public static int[] Of(HuggingFaceTokenizer tokenizer, string response)
    {
        var ids = tokenizer.Encode(response, null, addSpecialTokens: false).Ids;
        if (ids.Length == 0) return [];
        var ends = VisibleEnds(response);
        var decoder = new UTF8Encoding(false, false).GetDecoder();
        var chars = new char[16];
        var cuts = new int[ids.Length];
        int visible = 0;
        for (int t = 0; t < ids.Length; t++)
        {
            var bytes = tokenizer.TokenBytes(ids[t]);
            if (bytes.Length == 0 && tokenizer.IsSpecial(ids[t])) visible++; // [UNK] stands for at least one character
            else
            {
                if (chars.Length < bytes.Length + 4) chars = new char[bytes.Length + 4];
                int n = decoder.GetChars(bytes, 0, bytes.Length, chars, 0, flush: false);
                for (int c = 0; c < n; c++)
                    if (!char.IsWhiteSpace(chars[c]) && !char.IsLowSurrogate(chars[c])) visible++;
            }
            cuts[t] = ends[Math.Min(visible, ends.Length - 1)];
        }
        cuts[^1] = response.Length; // the last prefix is the whole response, trailing whitespace included
        return cuts;
    }

    /// <summary>ends[n] = the index just after the n-th visible character (ends[0] = 0).</summary>
    static int[] VisibleEnds(string text)
    {
        var ends = new List<int> { 0 };
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { ends.Add(i + 2); i++; }
            else if (!char.IsWhiteSpace(text[i])) ends.Add(i + 1);
        }
        return ends.ToArray();
    }
}
