using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Tests.Models;

namespace Pargs.Tests.Decoding;

/// <summary>
/// A burst of arrivals joins a continuous batch over several steps when a step's prefill is bounded
/// (<see cref="ContinuousDecoder.MaxJoinTokensPerStep"/>), and each row still gives exactly the tokens it gives alone;
/// a decoder timed phase by phase (<see cref="StepPhaseTimes"/>) gives the same tokens as an untimed one.
/// </summary>
public class ContinuousDecoderJoinBudgetTests
{
    static readonly string[] Prompts = { "abc", "hello", "q", "decoding", "amuchlongerpromptthantherest", "zz" };
    static readonly int[] MaxNew = { 6, 12, 3, 9, 5, 7 };

    sealed record Run(int[][] Tokens, List<int> RunningAfterStep);

    static Run Decode(int maxJoinTokens, StepPhaseTimes? times = null)
    {
        var config = TinyModels.LlamaConfig(40);
        var lm = TinyModels.RandomLM(config, seed: 7);
        lm.Tokenizer = new TestCharTokenizer(40);
        var rm = TinyModels.RandomRM(config, seed: 99);
        var method = new PargsOptions { K = 5, W = 1.5 };
        var tokenizer = lm.Tokenizer!;
        var encoded = Prompts.Select(p => tokenizer.Encode(p, addBos: true)).ToArray();
        var rows = Enumerable.Range(0, Prompts.Length)
            .Select(i => new RowProgress(new DecodingContext(tokenizer, null, false, Array.Empty<string>(), MaxNew[i]), i, 0, encoded[i])).ToArray();
        using var decoder = new ContinuousDecoder(LanguageModelEngine.Cached(lm), rm, method, capacity: 64, times: times) { MaxJoinTokensPerStep = maxJoinTokens };
        for (int i = 0; i < Prompts.Length; i++) decoder.Join(encoded[i], rows[i], DecodingSteps.RowRandom(4, i, 0)); // all arrive at once
        var started = new List<int>();
        int finished = 0;
        for (int step = 0; finished < Prompts.Length; step++)
        {
            Assert.True(step < 100, "the decoder stopped making progress");
            finished += decoder.Step().Count;
            started.Add(rows.Count(r => r.Tokens.Count > 0));
        }
        return new Run(rows.Select(r => r.Tokens.ToArray()).ToArray(), started);
    }

    [Fact]
    public void A_burst_joins_over_several_steps_within_the_budget_and_each_row_gives_its_tokens()
    {
        var unbounded = Decode(int.MaxValue);
        Assert.Equal(Prompts.Length, unbounded.RunningAfterStep[0]); // everything joins at the first step

        // BOS + "abc" = 4 tokens, BOS + "hello" = 6: a budget of 10 takes those two, then "q" (2) + "decoding" (9) > 10…
        var bounded = Decode(10);
        Assert.Equal(2, bounded.RunningAfterStep[0]);
        Assert.Equal(3, bounded.RunningAfterStep[1]); // "q" alone: adding "decoding" would exceed 10
        Assert.Equal(4, bounded.RunningAfterStep[2]); // "decoding" (9)
        Assert.Equal(5, bounded.RunningAfterStep[3]); // the 29-token prompt is over the budget and joins alone
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(MaxNew[i], bounded.Tokens[i].Length);
            Assert.Equal(unbounded.Tokens[i], bounded.Tokens[i]);
        }
    }

    /// <summary>
    /// A remote client's step requests (issue 18): each carries its row's whole prefix, of which the server's prefix cache
    /// holds all but the last token. The budget counts the tokens a join runs, so such rows join together; counted whole,
    /// the same 6 rows joined 2 at a time (as the first test's budget of 10 splits them).
    /// </summary>
    [Fact]
    public void Rows_whose_prefix_the_prefix_cache_holds_cost_the_budget_only_the_tokens_they_run()
    {
        var config = TinyModels.LlamaConfig(40);
        var lm = TinyModels.RandomLM(config, seed: 7);
        lm.Tokenizer = new TestCharTokenizer(40);
        var tokenizer = lm.Tokenizer!;
        using var cache = new PrefixCache(64 << 20);
        var engine = LanguageModelEngine.Cached(lm, cache);
        var prompts = Prompts.Select(p => tokenizer.Encode(p, addBos: true)).ToArray();

        // One step of each row, as a step request asks (max_tokens 1): the rows leave and their prompts stay in the cache.
        int[][] Step(int[][] rowsPrompts, int budget, List<int> joinedAfterStep)
        {
            using var decoder = new ContinuousDecoder(engine, null, new GreedyOptions(), capacity: 64) { MaxJoinTokensPerStep = budget };
            var rows = rowsPrompts.Select((p, i) => new RowProgress(new DecodingContext(tokenizer, null, false, Array.Empty<string>(), 1), i, 0, p)).ToArray();
            for (int i = 0; i < rows.Length; i++) decoder.Join(rowsPrompts[i], rows[i], DecodingSteps.RowRandom(4, i, 0));
            for (int finished = 0, step = 0; finished < rows.Length; step++)
            {
                Assert.True(step < 100, "the decoder stopped making progress");
                finished += decoder.Step().Count;
                joinedAfterStep.Add(rows.Count(r => r.Tokens.Count > 0));
            }
            return rows.Select(r => r.Tokens.ToArray()).ToArray();
        }

        var first = Step(prompts, int.MaxValue, new List<int>());
        var extended = prompts.Select((p, i) => p.Append(first[i][0]).ToArray()).ToArray(); // the next step request of each row
        Assert.All(extended, p => Assert.Equal(p.Length - 1, cache.KeptLength(p)));
        var joined = new List<int>();
        var second = Step(extended, 10, joined);
        Assert.Equal(Prompts.Length, joined[0]); // one token each: all six within a budget of 10

        // The same requests without their prefixes kept: the whole prompts count, and they give the same tokens.
        using var cold = new PrefixCache(64 << 20);
        var uncached = LanguageModelEngine.Cached(lm, cold);
        using var coldDecoder = new ContinuousDecoder(uncached, null, new GreedyOptions(), capacity: 64) { MaxJoinTokensPerStep = 10 };
        var coldRows = extended.Select((p, i) => new RowProgress(new DecodingContext(tokenizer, null, false, Array.Empty<string>(), 1), i, 0, p)).ToArray();
        for (int i = 0; i < coldRows.Length; i++) coldDecoder.Join(extended[i], coldRows[i], DecodingSteps.RowRandom(4, i, 0));
        coldDecoder.Step();
        Assert.Equal(1, coldRows.Count(r => r.Tokens.Count > 0)); // BOS + "abc" + 1 = 5, then BOS + "hello" + 1 = 7: 12 > 10
        for (int step = 0; coldRows.Any(r => r.Tokens.Count == 0); step++)
        {
            Assert.True(step < 100, "the decoder stopped making progress");
            coldDecoder.Step();
        }
        for (int i = 0; i < Prompts.Length; i++) Assert.Equal(coldRows[i].Tokens.ToArray(), second[i]);
    }

    [Fact]
    public void A_timed_decoder_gives_the_same_tokens_and_sums_every_phase_it_ran()
    {
        var times = new StepPhaseTimes();
        var timed = Decode(10, times);
        var untimed = Decode(10);
        for (int i = 0; i < Prompts.Length; i++) Assert.Equal(untimed.Tokens[i], timed.Tokens[i]);
        Assert.Equal(timed.RunningAfterStep.Count, times.Steps);
        Assert.Equal(MaxNew.Sum(), times.RowSteps); // a row advances once per token it takes
        foreach (var phase in new[] { StepPhaseTimes.Phase.JoinLm, StepPhaseTimes.Phase.JoinRm, StepPhaseTimes.Phase.Choose, StepPhaseTimes.Phase.RmScore,
                                      StepPhaseTimes.Phase.RmCommit, StepPhaseTimes.Phase.Accept, StepPhaseTimes.Phase.LmStep })
            Assert.True(times.WallSeconds(phase) > 0, $"{phase} was not timed");
        Assert.Equal(0, times.WallSeconds(StepPhaseTimes.Phase.LogProbs)); // no row asked for log-probabilities
        Assert.True(times.WallSeconds(StepPhaseTimes.Phase.Choose) >= times.WallSeconds(StepPhaseTimes.Phase.RmScore)); // scoring runs inside the rule
        if (OperatingSystem.IsLinux()) Assert.True(times.CpuSeconds(StepPhaseTimes.Phase.RmScore) > 0);
    }
}
