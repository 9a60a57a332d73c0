using System.Text;
using Pargs.Tokenizers;

namespace Pargs.Tests.Data;

/// <summary>
/// TEST DOUBLE, not a real tokenizer: one id per UTF-8 byte (0..255), BOS = 256, EOS = 257. Optionally merges the
/// byte pair ": " into one id 258, which makes "prompt ending in ':'" + "response starting with ' '" merge across the
/// boundary, the case where <c>PairTokenizer</c> must fall back to tokenizing the response alone.
/// </summary>
public sealed class ByteTestTokenizer(bool mergeColonSpace = false, int? vocabSizeOverride = null) : ITokenizer
{
    public const int Bos = 256, Eos = 257, ColonSpace = 258;

    public int VocabSize => vocabSizeOverride ?? (mergeColonSpace ? 259 : 258);
    public int? BosId => Bos;
    public int? EosId => Eos;

    public int[] Encode(string text, bool addBos = false)
    {
        var ids = new List<int>();
        if (addBos) ids.Add(Bos);
        var bytes = Encoding.UTF8.GetBytes(text);
        for (int i = 0; i < bytes.Length; i++)
        {
            if (mergeColonSpace && bytes[i] == (byte)':' && i + 1 < bytes.Length && bytes[i + 1] == (byte)' ') { ids.Add(ColonSpace); i++; }
            else ids.Add(bytes[i]);
        }
        return ids.ToArray();
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecial = true) =>
        Encoding.UTF8.GetString(ids.Where(id => !(skipSpecial && IsSpecial(id))).SelectMany(TokenBytes).ToArray());

    public byte[] TokenBytes(int id) => id switch
    {
        < 256 => [(byte)id],
        ColonSpace => [(byte)':', (byte)' '],
        _ => [],
    };

    public bool IsSpecial(int id) => id is Bos or Eos;

    public void SaveTokenizerJson(string path) => throw new NotSupportedException("Test double.");
}
