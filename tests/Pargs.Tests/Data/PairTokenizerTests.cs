using Pargs.Data;

namespace Pargs.Tests.Data;

public class PairTokenizerTests
{
    static int[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray();

    [Fact]
    public void Pair_becomes_bos_prompt_and_continuation_ids_padded_with_eos()
    {
        var tokenizer = new ByteTestTokenizer();
        var pairs = new[] { new PreferencePair("Q:", " good", " no", 2.0, 5) };
        var (tokenized, report) = new PairTokenizer(tokenizer).Tokenize(pairs);

        var pair = Assert.Single(tokenized);
        Assert.Equal([ByteTestTokenizer.Bos, .. Bytes("Q:")], pair.PromptIds);
        Assert.Equal(Bytes(" good"), pair.ChosenIds);
        Assert.Equal([.. Bytes(" no"), ByteTestTokenizer.Eos, ByteTestTokenizer.Eos], pair.RejectedIds);
        Assert.Equal([1, 2, 3, 4, 5], pair.PrefixLengths);
        Assert.Equal((2.0, 5), (pair.Margin, pair.SourceLine));
        Assert.Equal(new PairTokenizeReport(1, 1, 0, 0, 0, 8), report);
        Assert.Equal("Q: good", tokenizer.Decode(pair.ChosenSequence));
    }

    [Fact]
    public void Boundary_merge_falls_back_to_the_response_alone_without_bos_and_is_counted()
    {
        var tokenizer = new ByteTestTokenizer(mergeColonSpace: true);
        var (tokenized, report) = new PairTokenizer(tokenizer).Tokenize([new PreferencePair("Q:", " a", "b")]);

        var pair = Assert.Single(tokenized);
        Assert.Equal([ByteTestTokenizer.Bos, (int)'Q', (int)':'], pair.PromptIds);
        Assert.Equal(Bytes(" a"), pair.ChosenIds);           // fallback: "Q: a" merged ": " across the boundary
        Assert.Equal([(int)'b', ByteTestTokenizer.Eos], pair.RejectedIds); // continuation worked: "Q:b"
        Assert.Equal(1, report.ContinuationFallbacks);
    }

    [Fact]
    public void Pairs_longer_than_max_length_are_filtered_and_counted_never_truncated()
    {
        var pairs = new[]
        {
            new PreferencePair("ab", "cd", "e", SourceLine: 1),          // 1 + 2 + 2 = 5
            new PreferencePair("ab", "cdef", "e", SourceLine: 2),        // 1 + 2 + 4 = 7
            new PreferencePair("abcdef", "g", "h", SourceLine: 3),       // 1 + 6 + 1 = 8
            new PreferencePair("a", "bcd", "e", SourceLine: 4),          // 1 + 1 + 3 = 5
        };
        var (tokenized, report) = new PairTokenizer(new ByteTestTokenizer(), new PairTokenizerOptions { MaxLength = 6 }).Tokenize(pairs);

        Assert.Equal([1, 4], tokenized.Select(p => p.SourceLine));
        Assert.All(tokenized, p => Assert.True(p.SequenceLength <= 6));
        Assert.Equal(new PairTokenizeReport(4, 2, FilteredTooLong: 2, FilteredTooShort: 0, ContinuationFallbacks: 0, LongestKeptSequence: 5), report);
    }

    [Fact]
    public void Responses_shorter_than_min_prefix_are_filtered_and_counted()
    {
        var options = new PairTokenizerOptions { PartialPairs = new PartialPairOptions { MinPrefixLength = 3 } };
        var (tokenized, report) = new PairTokenizer(new ByteTestTokenizer(), options)
            .Tokenize([new PreferencePair("p", "ab", "c"), new PreferencePair("p", "abc", "d")]);
        Assert.Single(tokenized);
        Assert.Equal(1, report.FilteredTooShort);
        Assert.Equal([3], tokenized[0].PrefixLengths);
    }

    [Fact]
    public void Ids_outside_the_given_vocabulary_are_an_error_naming_source_line_and_field()
    {
        // The merged ": " id 258 is outside a 258-id model vocabulary (the test double's own size is 259).
        var tokenizer = new ByteTestTokenizer(mergeColonSpace: true);
        var options = new PairTokenizerOptions { VocabSize = 258 };
        var error = Assert.Throws<PargsException>(() =>
            new PairTokenizer(tokenizer, options).Tokenize([new PreferencePair("p", "ok", "a: b", SourceLine: 12)], "prefs.jsonl"));
        Assert.Contains("prefs.jsonl:12", error.Message);
        Assert.Contains("'rejected'", error.Message);
        Assert.Contains("id 258", error.Message);

        // BOS (256) itself is outside a 128 vocabulary too: the prompt is checked first.
        var bosError = Assert.Throws<PargsException>(() =>
            new PairTokenizer(tokenizer, options with { VocabSize = 200, EosId = 0 }).Tokenize([new PreferencePair("p", "a", "b", SourceLine: 3)], "x.jsonl"));
        Assert.Contains("'prompt'", bosError.Message);
    }

    [Fact]
    public void Real_hh_rlhf_pairs_tokenize_as_exact_continuations()
    {
        var (pairs, _) = PreferenceReader.Read(DataTestFiles.HhRlhfHarmlessTest, new PreferenceReadOptions { OnBadRow = BadRowPolicy.Skip });
        var tokenizer = new ByteTestTokenizer();
        var some = pairs.Take(200).ToList();
        var (tokenized, report) = new PairTokenizer(tokenizer, new PairTokenizerOptions { MaxLength = 400 }).Tokenize(some, "hh");

        Assert.Equal(200, report.PairsKept + report.FilteredTooLong);
        Assert.True(report.FilteredTooLong > 0 && report.PairsKept > 0);
        Assert.Equal(0, report.ContinuationFallbacks);
        var byLine = some.ToDictionary(p => p.SourceLine);
        Assert.All(tokenized, t =>
        {
            var text = byLine[t.SourceLine];
            Assert.Equal(text.Prompt + text.Chosen, tokenizer.Decode(t.ChosenSequence));
            Assert.Equal(text.Prompt + text.Rejected, tokenizer.Decode(t.RejectedSequence));
            Assert.Equal(t.ResponseLength, t.PrefixLengths.Length);
        });
    }
}
