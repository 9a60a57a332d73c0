using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tokenizers;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Pargs.Tests.Decoding;

/// <summary>LM and reward model with different tokenizers: candidates go through text (RetokenizingScorer).</summary>
public class CrossTokenizerDecodingTests(ITestOutputHelper output)
{
    // Accents and emoji: their UTF-8 bytes are separate byte-level pieces in both vocabularies.
    static readonly string[] Prompts = { "café au lait", "Once upon a time 😀", "naïve résumé", "The dog" };

    static (CausalLM Lm, RewardModel Rm) Models(bool gpt2Lm)
    {
        var (lmTok, rmTok) = gpt2Lm ? (CrossTokenizerModels.Gpt2, CrossTokenizerModels.SentencePiece) : (CrossTokenizerModels.SentencePiece, CrossTokenizerModels.Gpt2);
        return (CrossTokenizerModels.Lm(lmTok, CrossTokenizerModels.Favoured(lmTok), seed: 17), CrossTokenizerModels.Rm(rmTok, seed: 23, "tiny-rm"));
    }

    [Theory]
    [InlineData(true, "pargs")]
    [InlineData(false, "pargs-g")]
    public void Bridged_fast_path_scores_and_chooses_like_the_naive_oracle(bool gpt2Lm, string method)
    {
        var (lm, rm) = Models(gpt2Lm);
        Assert.False(VocabularyBridge.SharesVocabulary(lm.Info, rm));
        var options = new DecodingOptions { Method = GuidedDecodingTests.Method(method, k: 5, w: 1.5), MaxNewTokens = 10, Seed = 3, StopAtEos = false, BatchSize = 4 };
        var tok = lm.Tokenizer!;
        int eos = lm.Config.EosTokenId!.Value;
        var (fast, fastRows, fastTrace) = OracleComparison.AssertFastMatchesNaive(lm, rm, options, Prompts);

        // The test saw what it is about: lone lead/continuation bytes and EOS among the candidates, and every path.
        var candidates = fastTrace.SelectMany(t => t.CandidateIds).ToHashSet();
        Assert.Contains(eos, candidates);
        Assert.Contains(CrossTokenizerModels.ByteToken(tok, 0xF0), candidates);
        Assert.Contains(CrossTokenizerModels.ByteToken(tok, 0xC3), candidates);
        var c = fast.Counts;
        output.WriteLine($"siblings {c.Siblings}, extensions {c.Extensions}, unchanged {c.Unchanged}, full forwards {c.FullForwards}; commits: sibling {c.SiblingCommits}, append {c.AppendCommits}, rebuild {c.Rebuilds}");
        output.WriteLine(string.Join(" | ", fastRows.Select(r => r.Text)));
        // With the default lag of 1 every candidate re-reads the last committed RM token, so segments have 2+
        // tokens; the one-token and fallback paths are pinned down one by one in the test below (lag 0 and 1).
        Assert.True(c.Extensions > 0, "no candidate took the cached path");
        Assert.True(c.Unchanged > 0, "no candidate left the text unchanged (held-back byte)");
        Assert.True(c.AppendCommits > 0 && c.SiblingCommits > 0);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Every_scoring_and_commit_path_gives_the_from_scratch_reward(int lag)
    {
        var (lm, rm) = Models(gpt2Lm: true);
        var gpt2 = lm.Tokenizer!;
        var bridge = RewardRetokenizer.For(lm.Info, rm)!;
        var prompt = gpt2.Encode("The dog was hap");
        var c = bridge.RewardIds(prompt);
        // One candidate of each kind, found by retokenizing (T: the RM ids with the candidate).
        int Find(Func<int[], bool> kind) => Enumerable.Range(256, 20000).First(id => kind(bridge.RewardIds([.. prompt, id])));
        bool Extends(int[] t) => t.AsSpan().StartsWith(c);
        int diverging = Find(t => !Extends(t));
        int sibling = Find(t => Extends(t) && t.Length == c.Length + 1);
        int extension = Find(t => Extends(t) && t.Length > c.Length + 1);
        int leadByte = CrossTokenizerModels.ByteToken(gpt2, 0xF0), eos = 50256;
        var columns = new long[] { diverging, sibling, extension, leadByte, eos };
        output.WriteLine(string.Join(", ", columns.Select(id => $"\"{gpt2.Decode([(int)id])}\"")));

        var counts = new CandidateScoringCounts();
        using var scorer = new RetokenizingScorer(rm, bridge, 16, counts, lag);
        using var _ = no_grad();
        var sequence = prompt.ToList();
        scorer.AddRows([prompt]);
        // Commit in turn: the diverging candidate (rebuild), the extension (append), the sibling (copy), EOS
        // (no new RM token), the lead byte (held back); the rewards always equal a from-scratch forward.
        foreach (var (column, check) in new (int, Func<long>)[]
                 { (0, () => counts.Rebuilds), (2, () => counts.AppendCommits), (1, () => counts.SiblingCommits), (4, () => 0), (3, () => 0) })
        {
            var got = scorer.Score(tensor(columns).unsqueeze(0), [true])[0];
            for (int j = 0; j < columns.Length; j++)
            {
                var ids = bridge.RewardIds([.. sequence, (int)columns[j]]).Select(i => (long)i).ToArray();
                var seq = tensor(ids).unsqueeze(0);
                float expected = rm.SequenceRewards(seq, ones_like(seq, dtype: ScalarType.Bool))[0].item<float>();
                Assert.True(Math.Abs(expected - got[j]) <= 1e-4, $"after {sequence.Count - prompt.Length} commits, candidate {j}: {got[j]} vs {expected}");
            }
            long before = check();
            scorer.Commit([column]);
            if (lag == 0 && column <= 2) Assert.Equal(before + 1, check()); // with lag 0, C is the cached prefix
            sequence.Add((int)columns[column]);
        }
        output.WriteLine($"siblings {counts.Siblings}, extensions {counts.Extensions}, unchanged {counts.Unchanged}, full forwards {counts.FullForwards}; commits: sibling {counts.SiblingCommits}, append {counts.AppendCommits}, rebuild {counts.Rebuilds}");
        Assert.True(counts.Extensions > 0 && counts.Unchanged > 0 && counts.SiblingCommits + counts.AppendCommits > 0);
        if (lag == 0) Assert.True(counts.Siblings > 0 && counts.FullForwards > 0);
    }

    [Fact]
    public void Generation_stops_at_eos_and_matches_the_oracle_row_by_row()
    {
        var (lm, rm) = Models(gpt2Lm: true);
        var o = new DecodingOptions { Method = new ArgsOptions { K = 5, W = 2.0 }, MaxNewTokens = 10, StopAtEos = true, BatchSize = 4 };
        var fast = TextGenerator.Generate(lm, rm, Prompts, o);
        var naive = TextGenerator.Generate(lm, rm, Prompts, o with { Engine = DecodingEngine.Naive });
        Assert.Equal(naive.Select(r => r.TokenIds), fast.Select(r => r.TokenIds));
        Assert.Equal(naive.Select(r => r.FinishReason), fast.Select(r => r.FinishReason));
        Assert.Contains(fast, r => r.FinishReason == "eos");
        Assert.Contains(fast, r => r.FinishReason == "length");
    }

    [Fact]
    public void Retokenizer_holds_back_incomplete_characters_adds_bos_and_eos_and_drops_the_dummy_prefix()
    {
        var (gpt2, sp) = (CrossTokenizerModels.Gpt2, CrossTokenizerModels.SentencePiece);
        var toSp = new RewardRetokenizer(gpt2, 50256, sp, "sp-rm", 256);
        int c3 = CrossTokenizerModels.ByteToken(gpt2, 0xC3), a9 = CrossTokenizerModels.ByteToken(gpt2, 0xA9);
        var caf = gpt2.Encode("Caf");
        Assert.Equal(sp.Encode("Caf", addBos: true), toSp.RewardIds([.. caf, c3]));
        Assert.Equal(sp.Encode("Café", addBos: true), toSp.RewardIds([.. caf, c3, a9]));
        Assert.Equal([.. sp.Encode("Café", addBos: true), 2], toSp.RewardIds([.. caf, c3, a9, 50256]));
        Assert.Equal(sp.Encode("Café", addBos: true), toSp.RewardIds([.. caf, c3, 50256, a9])); // EOS mid-sequence: empty text
        Assert.Equal("Caf\uFFFDx", RewardRetokenizer.CompleteText([.. "Caf"u8, 0xA9, (byte)'x'])); // invalid byte: U+FFFD, as Decode

        // SentencePiece LM: its dummy-prefix space is not text. GPT-2 has no BOS and no dummy prefix.
        var toGpt2 = new RewardRetokenizer(sp, 2, gpt2, "gpt2-rm", 256);
        Assert.Equal(gpt2.Encode("Once upon"), toGpt2.RewardIds(sp.Encode("Once upon", addBos: true)));
        Assert.Equal([.. gpt2.Encode("Once upon"), 50256], toGpt2.RewardIds([.. sp.Encode("Once upon", addBos: true), 2]));
    }

    [Fact]
    public void Best_of_n_scores_each_sample_by_its_retokenized_text()
    {
        var (_, rm) = Models(gpt2Lm: true);
        var lm = CrossTokenizerModels.Lm(CrossTokenizerModels.Gpt2, [], seed: 17); // mostly whole words
        var o = new DecodingOptions { Method = new BestOfNOptions { K = 8, N = 3 }, MaxNewTokens = 6, Seed = 9, StopAtEos = false };
        var results = TextGenerator.Generate(lm, rm, Prompts, o);
        using var _ = no_grad();
        int independent = 0;
        foreach (var r in results)
        {
            var bridge = RewardRetokenizer.For(lm.Info, rm)!;
            var ids = bridge.RewardIds([.. lm.Tokenizer!.Encode(r.Prompt, addBos: true), .. r.TokenIds]);
            // Independently of the bridge when the text is complete: the RM reads prompt + output, BOS first.
            if (!r.Output.Contains('\uFFFD'))
            {
                Assert.Equal(rm.Tokenizer!.Encode(r.Prompt + r.Output, addBos: true), ids);
                independent++;
            }
            var seq = tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0);
            float expected = rm.SequenceRewards(seq, ones_like(seq, dtype: ScalarType.Bool))[0].item<float>();
            Assert.Equal(expected, r.GuideReward!.Value, 4);
        }
        Assert.True(independent > 0);
    }

    [Fact]
    public void A_reward_tokenizer_that_cannot_write_the_text_is_a_clear_error()
    {
        // Letters and the space marker only: no byte pieces, so "é" becomes <unk>, which reads back as nothing.
        var pieces = new[] { "<unk>", "<s>", "</s>", "▁" }.Concat(Enumerable.Range('a', 26).Select(c => ((char)c).ToString()))
            .Concat(Enumerable.Range('A', 26).Select(c => ((char)c).ToString())).ToArray();
        var letters = SentencePieceTokenizer.FromVocabulary(pieces, new float[pieces.Length], null, 1, 2);
        var rm = CrossTokenizerModels.Rm(letters, seed: 5, "letters-only-rm");
        var lm = CrossTokenizerModels.Lm(CrossTokenizerModels.Gpt2, [], seed: 3);
        var o = new DecodingOptions { Method = new PargsOptions { K = 4 }, MaxNewTokens = 3 };
        var e = Assert.Throws<PargsException>(() => TextGenerator.Generate(lm, rm, new[] { "un café" }, o));
        Assert.Contains("letters-only-rm", e.Message);
        Assert.Contains("cannot represent", e.Message);
        Assert.Contains("un café", e.Message);

        // Different vocabularies and no reward tokenizer to bridge with.
        rm.Tokenizer = null;
        Assert.Contains("vocabulary", Assert.Throws<PargsException>(() => TextGenerator.Generate(lm, rm, new[] { "hello" }, o)).Message);
    }
}
