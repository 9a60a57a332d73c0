using System.Text;
using Pargs.Tokenizers;
using Xunit.Abstractions;

namespace Pargs.Tests.Tokenizers;

/// <summary>
/// Every tokenizer of the fixtures on every text of the corpus (≥ 2,000: HH dialogues, stories and a stress
/// set) against Hugging Face's Rust library: ids without and with special tokens, pair encodings with token
/// type ids, and decodes with and without skipping special tokens.
/// </summary>
public class HuggingFaceGoldenTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Names => TokenizerGoldens.Names.Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(Names))]
    public void Matches_the_rust_library_on_the_whole_corpus(string name)
    {
        var tokenizer = TokenizerGoldens.Load(name);
        var corpus = TokenizerGoldens.Corpus;
        var goldens = TokenizerGoldens.Read(name);
        Assert.Equal(corpus.Length, goldens.Count);
        Assert.True(corpus.Length >= 2000);
        var failures = new List<string>();
        int idsEqual = 0, decodesEqual = 0;
        for (int i = 0; i < corpus.Length; i++)
        {
            var text = corpus[i];
            var golden = goldens[i];
            var ids = tokenizer.Encode(text);
            if (ids.AsSpan().SequenceEqual(golden.Ids)) idsEqual++;
            else failures.Add($"text {i} {Show(text)}: ids [{Show(ids)}] expected [{Show(golden.Ids)}]");
            var decode = tokenizer.Decode(golden.Ids);
            var decodeAll = tokenizer.Decode(golden.Ids, skipSpecial: false);
            var expectedDecode = golden.Decode ?? text;
            if (decode == expectedDecode && decodeAll == (golden.DecodeAll ?? expectedDecode)) decodesEqual++;
            else failures.Add($"text {i} {Show(text)}: decode {Show(decode)} / {Show(decodeAll)} expected {Show(expectedDecode)} / {Show(golden.DecodeAll ?? expectedDecode)}");
            if (golden.IdsSpecial is { } special)
            {
                if (!tokenizer.Encode(text, addBos: true).AsSpan().SequenceEqual(special))
                    failures.Add($"text {i} {Show(text)}: with special tokens [{Show(tokenizer.Encode(text, addBos: true))}] expected [{Show(special)}]");
                // A leading BOS decoded with the special tokens: the space after it stays (Llama-2's Strip decoder acts on the whole text).
                var decodeSpecial = tokenizer.Decode(special, skipSpecial: false);
                if (decodeSpecial != golden.DecodeSpecial)
                    failures.Add($"text {i} {Show(text)}: decode with special tokens {Show(decodeSpecial)} expected {Show(golden.DecodeSpecial!)}");
            }
            if (golden.PairIds is { } pairIds)
            {
                var pair = tokenizer.Encode(text, corpus[i + 1], addSpecialTokens: true);
                if (!pair.Ids.AsSpan().SequenceEqual(pairIds) || !pair.TypeIds.AsSpan().SequenceEqual(golden.PairTypeIds))
                    failures.Add($"text {i} pair: [{Show(pair.Ids)}] types [{Show(pair.TypeIds)}] expected [{Show(pairIds)}] types [{Show(golden.PairTypeIds!)}]");
            }
        }
        output.WriteLine($"{name}: {idsEqual}/{corpus.Length} ids equal, {decodesEqual}/{corpus.Length} decodes equal");
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} differences from the Rust library; first ones:\n" + string.Join("\n", failures.Take(12)));
    }

    static string Show(string s) => JsonEscape(s.Length > 80 ? s[..80] + "…" : s);

    static string Show(int[] ids) => string.Join(",", ids.Length > 40 ? ids.Take(40).Select(i => i.ToString()).Append("…") : ids.Select(i => i.ToString()));

    static string JsonEscape(string s) => System.Text.Json.JsonSerializer.Serialize(s);
}
