using System.Text;
using Pargs.Tokenizers;

namespace Pargs.Tests.Models;

/// <summary>
/// Test double for the tiny random models: id 0 = pad, 1 = BOS, 2 = EOS, id i ≥ 3 = one ASCII character
/// starting at 'a'. Not a real tokenizer; the real ones are tested on real vocabularies.
/// </summary>
public sealed class TestCharTokenizer : ITokenizer
{
    public TestCharTokenizer(int vocabSize) => VocabSize = vocabSize;
    public int VocabSize { get; }
    public int? BosId => 1;
    public int? EosId => 2;

    public int[] Encode(string text, bool addBos = false)
    {
        var ids = text.Select(c => c - 'a' + 3).ToList();
        if (ids.Any(i => i < 3 || i >= VocabSize)) throw new PargsException($"TestCharTokenizer cannot encode \"{text}\"");
        if (addBos) ids.Insert(0, 1);
        return ids.ToArray();
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecial = true)
        => new(ids.Where(i => !skipSpecial || !IsSpecial(i)).Select(i => i < 3 ? '?' : (char)('a' + i - 3)).ToArray());

    public byte[] TokenBytes(int id) => id < 3 ? Array.Empty<byte>() : Encoding.ASCII.GetBytes(((char)('a' + id - 3)).ToString());
    public bool IsSpecial(int id) => id < 3;
    public void SaveTokenizerJson(string path) => throw new NotSupportedException("test double");
}
