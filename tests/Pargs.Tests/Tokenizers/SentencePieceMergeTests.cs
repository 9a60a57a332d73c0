using System.Diagnostics;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

/// <summary>The heap-based merge of <see cref="SentencePieceTokenizer"/> against llama2.c's loop, written out here.</summary>
public class SentencePieceMergeTests
{
    static SentencePieceTokenizer Stories() => SentencePieceTokenizer.LoadLlama2c(TokenizerTestData.Stories260K("tok512.bin"));

    /// <summary>llama2.c run.c <c>encode</c>: dummy prefix, code points or byte pieces, then merge the best-scoring pair (leftmost) until none.</summary>
    static int[] Llama2cEncode(SentencePieceTokenizer tok, string text)
    {
        if (text.Length == 0) return [];
        var idOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < tok.Pieces.Count; id++) idOf.TryAdd(tok.Pieces[id], id);
        var symbols = new List<int>();
        foreach (var rune in ("▁" + text.Replace(' ', '▁')).EnumerateRunes())
        {
            if (idOf.TryGetValue(rune.ToString(), out var id)) { symbols.Add(id); continue; }
            foreach (var b in System.Text.Encoding.UTF8.GetBytes(rune.ToString())) symbols.Add(b + 3);
        }
        while (true)
        {
            float best = -1e10f;
            int bestAt = -1, bestId = -1;
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                if (idOf.TryGetValue(tok.Pieces[symbols[i]] + tok.Pieces[symbols[i + 1]], out var id) && tok.Scores[id] > best)
                    (best, bestAt, bestId) = (tok.Scores[id], i, id);
            }
            if (bestAt < 0) break;
            symbols[bestAt] = bestId;
            symbols.RemoveAt(bestAt + 1);
        }
        return symbols.ToArray();
    }

    [Fact]
    public void Heap_merge_equals_llama2c_loop()
    {
        var tok = Stories();
        int count = 0;
        foreach (var text in TokenizerTestData.VariedStrings(randomCount: 200, seed: 99).Concat(TokenizerGoldens.Corpus.Take(600)))
        {
            if (text.Length > 4000) continue; // the reference is quadratic
            Assert.Equal(Llama2cEncode(tok, text), tok.Encode(text));
            count++;
        }
        Assert.True(count > 700);
    }

    [Fact]
    public void Long_text_merges_in_n_log_n()
    {
        var tok = Stories();
        var text = string.Concat(Enumerable.Repeat("Once upon a time, there was a little girl named Lily. ", 2000)); // 108,000 characters
        var watch = Stopwatch.StartNew();
        var ids = tok.Encode(text);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"{watch.Elapsed.TotalSeconds:F1} s for {text.Length} characters");
        Assert.Equal(text, tok.Decode(ids));
    }
}
