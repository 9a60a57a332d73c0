using TorchSharp;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tests.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Decoding;

/// <summary>
/// FaRMA, FaRMA-G and GenARM: reward models whose head scores the whole vocabulary. Each runs on the cached engine
/// and its cache-free oracle with the same tokens and scores, matches a written-out computation from full forwards,
/// and samples from its stated distribution (chi-square).
/// </summary>
public class VocabularyMethodTests
{
    static readonly string[] Prompts = { "abc", "hello", "q", "decoding" };
    const int Vocab = 40;

    static (CausalLM Lm, VocabularyRewardModel Rm) Models(RewardObjective objective)
    {
        var config = TinyModels.LlamaConfig(Vocab);
        var lm = TinyModels.RandomLM(config, seed: 7);
        lm.Tokenizer = new TestCharTokenizer(Vocab);
        var rmLm = TinyModels.RandomLM(config, seed: 99);
        rmLm.Tokenizer = new TestCharTokenizer(Vocab);
        return (lm, new VocabularyRewardModel(rmLm, objective));
    }

    static IMethodOptions Method(string name, int? k = null, double? w = null, double? temperature = null)
        => DecodingMethods.Parse(name).Options(new MethodSettings { K = k, W = w, Temperature = temperature });

    [Theory]
    [InlineData("farma", RewardObjective.Farma)]
    [InlineData("farma-g", RewardObjective.Farma)]
    [InlineData("genarm", RewardObjective.Genarm)]
    [InlineData("pargs", RewardObjective.Farma)] // a tokenwise rule reads r(x, y<t ∘ v) off the same head
    public void Cached_engine_matches_the_cache_free_oracle_token_for_token_and_score_for_score(string method, RewardObjective objective)
    {
        var (lm, rm) = Models(objective);
        var options = new DecodingOptions
        {
            Method = Method(method, k: method == "genarm" ? null : 5, w: 1.5), MaxNewTokens = 12, Seed = 3, StopAtEos = false, BatchSize = 4,
        };
        var outcome = OracleComparison.AssertFastMatchesNaive(lm, rm, options, Prompts);
        Assert.All(outcome.FastRows, r => Assert.Equal(12, r.Tokens.Count));
    }

    /// <summary>Written out from full forwards of both models: FaRMA-G picks argmax_v log p(v) + w·RM(x, y)[v] over the whole vocabulary.</summary>
    [Fact]
    public void FarmaG_is_the_argmax_over_the_whole_vocabulary_of_log_p_plus_w_times_the_reward_head()
    {
        var (lm, rm) = Models(RewardObjective.Farma);
        const double w = 2.0;
        var options = new DecodingOptions { Method = new FarmaGreedyOptions { K = 3, W = w }, MaxNewTokens = 8, StopAtEos = false };
        var got = TextGenerator.Generate(lm, rm, ["hello"], options).Single().TokenIds;

        var sequence = lm.Tokenizer!.Encode("hello", addBos: true).Select(i => (long)i).ToList();
        bool outsideLmTopK = false;
        using (no_grad())
            for (int step = 0; step < 8; step++)
            {
                var input = tensor(sequence.ToArray()).unsqueeze(0);
                var logp = lm.Logits(input)[0, -1].log_softmax(-1);
                var head = rm.Model.Logits(input)[0, -1];
                long best = logp.Plus(head.Times(w)).argmax().item<long>();
                outsideLmTopK |= !logp.topk(3).indexes.data<long>().ToArray().Contains(best);
                sequence.Add(best);
            }
        Assert.Equal(sequence.Skip(sequence.Count - 8).Select(i => (int)i).ToArray(), got);
        Assert.True(outsideLmTopK, "with w = 2 some step should pick a token outside the LM's own top-3 (top-k is taken after combining)");
    }

    /// <summary>A scorer whose head is fixed: the rule's sampling, alone.</summary>
    sealed class FixedScorer(float[] values) : VocabularyScorerBase
    {
        readonly Tensor row = tensor(values).unsqueeze(0);
        public override int Rows => 1;
        public override Tensor Values => row;
        public override void AddRows(IReadOnlyList<int[]> prompts) { }
        public override void KeepRows(int[] rows) { }
        public override void Append(long[] tokens) { }
        public override void Dispose() => row.Dispose();
    }

    /// <summary>
    /// The reward model steps one token per generated token: the prefill gives the values the first token is chosen
    /// with, each later token's append is stepped when the next choice reads the values, and the last token's values,
    /// never read, are never computed (RM calls per token = 1, not (n + 1) / n).
    /// </summary>
    [Theory]
    [InlineData("farma")]
    [InlineData("genarm")]
    public void The_reward_model_never_steps_past_the_last_token(string method)
    {
        var (lm, rm) = Models(method == "genarm" ? RewardObjective.Genarm : RewardObjective.Farma);
        const int n = 9;
        var options = new DecodingOptions { Method = Method(method, k: method == "genarm" ? null : 4, w: 1.5), MaxNewTokens = n, Seed = 3, StopAtEos = false, BatchSize = 4 };
        var decoder = new TokenwiseDecoder(lm, rm, options);
        var context = new DecodingContext(lm.Tokenizer!, null, false, Array.Empty<string>(), n);
        var prompts = Prompts.Select(p => lm.Tokenizer!.Encode(p, addBos: true)).ToList();
        var rows = prompts.Select((p, i) => new RowProgress(context, i, i, p)).ToArray();
        decoder.Run(prompts, rows);
        Assert.All(rows, r => Assert.Equal(n, r.Tokens.Count));
        Assert.Equal(n - 1, decoder.Counts.AppendCommits); // batch steps of all four rows
    }

    /// <summary>Fixed values [B, V] for every step (a vocabulary scorer of several rows that never moves).</summary>
    sealed class FixedRowsScorer(float[] values, int rows) : VocabularyScorerBase
    {
        readonly Tensor table = tensor(values).view(rows, -1);
        public override int Rows => rows;
        public override Tensor Values => table;
        public override void AddRows(IReadOnlyList<int[]> prompts) { }
        public override void KeepRows(int[] kept) { }
        public override void Append(long[] tokens) { }
        public override void Dispose() => table.Dispose();
    }

    /// <summary>
    /// FaRMA's candidates, written out: per row the k largest float32 sums log p + (float)w·r over the whole vocabulary,
    /// largest first, a tie going to the smaller id — on values on a coarse grid (so that many sums tie) and on a
    /// vocabulary that is and one that is not a multiple of the vector width.
    /// </summary>
    [Theory]
    [InlineData(37, 5)]
    [InlineData(1000, 10)]
    [InlineData(32000, 10)]
    public void Farma_candidates_are_the_top_k_of_the_float32_sums_with_ties_to_the_smaller_id(int vocab, int k)
    {
        const int rows = 3;
        const double w = 0.5;
        var rng = new Random(vocab);
        var logp = Enumerable.Range(0, rows * vocab).Select(_ => -rng.Next(0, 40) / 4f).ToArray();
        var head = Enumerable.Range(0, rows * vocab).Select(_ => rng.Next(-8, 9) / 4f).ToArray();
        using var scorer = new FixedRowsScorer(head, rows);
        using var next = tensor(logp).view(rows, vocab);
        var traces = new List<StepTrace>();
        var rule = new FarmaGreedyOptions { K = k, W = w }.CreateRule();
        rule.Choose(new TokenwiseStep
        {
            Next = new NextTokens(next), Scorer = scorer, RowRandom = [.. Enumerable.Range(0, rows).Select(b => DecodingSteps.RowRandom(1, b))],
            Active = [true, true, true], Index = 0, Trace = traces.Add,
        });
        Assert.Equal(rows, traces.Count);
        foreach (var trace in traces)
        {
            int b = trace.Row;
            var expected = Enumerable.Range(0, vocab).Select(v => (Score: logp[b * vocab + v] + (float)w * head[b * vocab + v], Id: v))
                .OrderByDescending(x => x.Score).ThenBy(x => x.Id).Take(k).ToList();
            Assert.Equal(expected.Select(x => (long)x.Id), trace.CandidateIds);
            Assert.Equal(expected.Select(x => x.Score), trace.Scores);
            Assert.Equal(0, trace.ChosenColumn); // FaRMA-G: the largest
        }
    }

    [Fact]
    public void Farma_refuses_a_reward_head_that_is_not_finite_naming_it()
    {
        var head = Enumerable.Repeat(0.1f, 2 * 50).ToArray();
        head[50 + 33] = float.NaN; // row 1, inside a vector of 8
        using var scorer = new FixedRowsScorer(head, 2);
        using var nextValue = (-3.9f).ToScalar(); // held: see Pargs.Models.HeldScalars
        using var next = full(2, 50, nextValue);
        var rule = new FarmaOptions { K = 4, W = 1 }.CreateRule();
        var e = Assert.Throws<PargsException>(() => rule.Choose(new TokenwiseStep
        {
            Next = new NextTokens(next), Scorer = scorer, RowRandom = [DecodingSteps.RowRandom(1, 0), DecodingSteps.RowRandom(1, 1)],
            Active = [true, true], Index = 0,
        }));
        Assert.Contains("not finite", e.Message);
    }

    static int[] Draws(TokenRule rule, float[] logProbs, float[] head, int n, int vocab)
    {
        using var scorer = new FixedScorer(head);
        using var next = tensor(logProbs).unsqueeze(0);
        var random = new[] { DecodingSteps.RowRandom(5, 0) };
        var counts = new int[vocab];
        for (int i = 0; i < n; i++)
        {
            using var scope = NewDisposeScope();
            counts[rule.Choose(new TokenwiseStep { Next = new NextTokens(next), Scorer = scorer, RowRandom = random, Active = [true], Index = i })[0]]++;
        }
        return counts;
    }

    /// <summary>Pearson's statistic over the tokens of non-zero expected probability; tokens of zero probability must never be drawn.</summary>
    static double ChiSquare(int[] counts, double[] expected, int n)
    {
        double chi = 0;
        for (int v = 0; v < counts.Length; v++)
        {
            if (expected[v] == 0) { Assert.Equal(0, counts[v]); continue; }
            double e = expected[v] * n;
            chi += (counts[v] - e) * (counts[v] - e) / e;
        }
        return chi;
    }

    static double[] Softmax(IEnumerable<double> scores)
    {
        var s = scores.ToArray();
        double max = s.Where(double.IsFinite).Max();
        var e = s.Select(x => double.IsNegativeInfinity(x) ? 0 : Math.Exp(x - max)).ToArray();
        return e.Select(x => x / e.Sum()).ToArray();
    }

    static readonly float[] LogProbs = Softmax([0.2, 1.1, -0.4, 0.9, -1.5, 0.0]).Select(p => (float)Math.Log(p)).ToArray();
    static readonly float[] Head = [0.5f, -0.8f, 1.2f, 0.1f, 2.0f, -0.3f];

    [Fact]
    public void Farma_samples_softmax_of_the_combined_score_over_its_top_k_chi_square()
    {
        const double w = 0.7, t = 0.8;
        const int k = 3, n = 20000;
        var rule = new FarmaOptions { K = k, W = w, Temperature = t }.CreateRule();
        var combined = LogProbs.Select((l, v) => (double)l + w * Head[v]).ToArray();
        var topK = combined.Select((s, v) => (s, v)).OrderByDescending(x => x.s).Take(k).Select(x => x.v).ToHashSet();
        var expected = Softmax(combined.Select((s, v) => topK.Contains(v) ? s / t : double.NegativeInfinity));
        double chi = ChiSquare(Draws(rule, LogProbs, Head, n, 6), expected, n);
        Assert.True(chi < 13.82, $"chi-square {chi:F2} with 2 degrees of freedom (critical 13.82 at p = 0.001)");
    }

    [Fact]
    public void GenArm_samples_pi_base_times_pi_r_to_the_alpha_over_the_whole_vocabulary_chi_square()
    {
        const double alpha = 1.5, t = 1.0;
        const int n = 20000;
        var headLogProbs = Softmax(Head.Select(h => (double)h)).Select(p => (float)Math.Log(p)).ToArray();
        var rule = new GenArmOptions { Alpha = alpha, Temperature = t }.CreateRule();
        var expected = Softmax(LogProbs.Select((l, v) => ((double)l + alpha * headLogProbs[v]) / t));
        double chi = ChiSquare(Draws(rule, LogProbs, headLogProbs, n, 6), expected, n);
        Assert.True(chi < 20.52, $"chi-square {chi:F2} with 5 degrees of freedom (critical 20.52 at p = 0.001)");
    }

    [Fact]
    public void A_vocabulary_method_with_a_scalar_reward_model_or_another_vocabulary_is_refused_naming_what_it_needs()
    {
        var (lm, _) = Models(RewardObjective.Farma);
        var scalar = TinyModels.RandomRM(TinyModels.LlamaConfig(Vocab), seed: 5);
        var options = new DecodingOptions { Method = new FarmaOptions(), MaxNewTokens = 3 };
        Assert.Contains("--objective farma", Assert.Throws<PargsException>(() => TextGenerator.Generate(lm, scalar, ["ab"], options)).Message);

        var other = TinyModels.RandomLM(TinyModels.LlamaConfig(Vocab + 5), seed: 1);
        other.Tokenizer = new TestCharTokenizer(Vocab + 5);
        var otherRm = new VocabularyRewardModel(other, RewardObjective.Genarm);
        Assert.Contains("must share the language model's vocabulary",
            Assert.Throws<PargsException>(() => TextGenerator.Generate(lm, otherRm, ["ab"], options with { Method = new GenArmOptions() })).Message);
    }

    [Fact]
    public void Farma_reward_of_a_sequence_is_the_head_logit_of_its_last_token_at_the_position_before()
    {
        var (_, rm) = Models(RewardObjective.Farma);
        int[][] sequences = [[1, 5, 9, 4], [1, 7]];
        var rewards = SequenceRewardBatches.Score(rm, sequences);
        using var _ = no_grad();
        for (int b = 0; b < sequences.Length; b++)
        {
            var s = sequences[b];
            var logits = rm.Model.Logits(tensor(s.Select(i => (long)i).ToArray()).unsqueeze(0))[0];
            Assert.Equal(logits[s.Length - 2, s[^1]].item<float>(), rewards[b], 4);
        }
        var (_, genarm) = Models(RewardObjective.Genarm);
        Assert.Contains("given its prompt", Assert.Throws<PargsException>(() => SequenceRewardBatches.Score(genarm, sequences)).Message);
    }

    [Fact]
    public void A_vocabulary_reward_model_is_saved_as_a_causal_lm_folder_and_recognised_by_its_objective_field()
    {
        var config = TinyModels.LlamaConfig(Vocab);
        var rmLm = TinyModels.RandomLM(config, seed: 21);
        var rm = new VocabularyRewardModel(rmLm, RewardObjective.Farma);
        string dir = Path.Combine(Path.GetTempPath(), $"pargs-farma-{Guid.NewGuid():N}");
        try
        {
            rm.Save(dir);
            var configJson = File.ReadAllText(Path.Combine(dir, "config.json"));
            Assert.Contains("\"pargs_objective\": \"farma\"", configJson);
            Assert.Contains("LlamaForCausalLM", configJson);
            var loaded = Assert.IsType<VocabularyRewardModel>(RewardModels.Load(dir, tokenizerPath: null, requireTokenizer: false));
            Assert.Equal(RewardObjective.Farma, loaded.Objective);
            using var _ = no_grad();
            var ids = tensor(new long[] { 1, 4, 8 }).unsqueeze(0);
            Assert.True(rm.Model.Logits(ids).allclose(loaded.Model.Logits(ids), rtol: 0, atol: 1e-6));
            Assert.Contains("has no scalar score head", Assert.Throws<PargsException>(() => RewardModel.Load(dir, requireTokenizer: false)).Message);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }
}

public class NewMethodRegistrationTests
{
    [Fact]
    public void The_methods_of_issue_19_state_what_they_read_and_which_reward_model_they_are_defined_with()
    {
        Assert.Equal((RewardUse.Vocabulary, RewardObjective.Farma), (DecodingMethods.Farma.RewardUse, DecodingMethods.Farma.GuideObjective!.Value));
        Assert.Equal((RewardUse.Vocabulary, RewardObjective.Farma), (DecodingMethods.FarmaGreedy.RewardUse, DecodingMethods.FarmaGreedy.GuideObjective!.Value));
        Assert.Equal((RewardUse.Vocabulary, RewardObjective.Genarm), (DecodingMethods.GenArm.RewardUse, DecodingMethods.GenArm.GuideObjective!.Value));
        Assert.Equal((RewardUse.Prefix, RewardObjective.Partial), (DecodingMethods.ControlledDecoding.RewardUse, DecodingMethods.ControlledDecoding.GuideObjective!.Value));
        Assert.Equal((RewardUse.Prefix, RewardObjective.Partial), (DecodingMethods.Cards.RewardUse, DecodingMethods.Cards.GuideObjective!.Value));
        Assert.True(DecodingMethods.Farma.IsTokenwiseGuided && DecodingMethods.GenArm.IsTokenwiseGuided);
        Assert.False(DecodingMethods.ControlledDecoding.IsTokenwiseGuided || DecodingMethods.Cards.IsTokenwiseGuided);
        Assert.False(DecodingMethods.FarmaGreedy.Samples);
        Assert.False(DecodingMethods.GenArm.Reads(MethodParameter.K)); // the whole vocabulary: -k is refused, not ignored
        Assert.True(DecodingMethods.ControlledDecoding.Reads(MethodParameter.Continuations) && DecodingMethods.ControlledDecoding.Reads(MethodParameter.BlockLength));
        Assert.True(DecodingMethods.Cards.Reads(MethodParameter.TargetReward));
        foreach (var objective in new[] { RewardObjective.Farma, RewardObjective.Genarm })
            Assert.Equal(objective, RewardObjectives.Parse(objective.ToConfigValue(), "test"));
    }
}
