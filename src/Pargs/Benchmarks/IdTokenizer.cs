using System.Text;
using Pargs.Tokenizers;

namespace Pargs.Benchmarks;

/// <summary>
/// BENCHMARK ONLY: a stand-in tokenizer for models with random weights and no vocabulary. Token id n
/// decodes to the text "&lt;n&gt;"; encoding parses that form back. It exists so that decoding code that
/// tracks text (RowProgress) can run on random-vocab models; it is not a tokenizer for real text.
/// </summary>
public sealed class IdTokenizer : ITokenizer
{
    public IdTokenizer(int vocabSize) => VocabSize = vocabSize;

    public int VocabSize { get; }
    public int? BosId => null;
    public int? EosId => null;

    public int[] Encode(string text, bool addBos = false)
    {
        var ids = new List<int>();
        foreach (var part in text.Split('<', StringSplitOptions.RemoveEmptyEntries))
        {
            var number = part.TrimEnd('>');
            if (!int.TryParse(number, out int id) || id < 0 || id >= VocabSize)
                throw new PargsException($"IdTokenizer: expected text of the form <id><id>… with ids below {VocabSize}, got \"<{part}\"");
            ids.Add(id);
        }
        return ids.ToArray();
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecial = true)
    {
        var text = new StringBuilder();
        foreach (var id in ids) text.Append('<').Append(id).Append('>');
        return text.ToString();
    }

    public byte[] TokenBytes(int id) => Encoding.UTF8.GetBytes($"<{id}>");
    public bool IsSpecial(int id) => false;

    public void SaveTokenizerJson(string path)
        => throw new PargsException("IdTokenizer is a benchmark stand-in and cannot be saved as tokenizer.json");
}
