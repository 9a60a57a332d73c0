using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tests.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Decoding;

/// <summary>
/// Blockwise controlled decoding and CARDS: the cached engine against the cache-free oracle, a written-out run, and
/// chi-square tests of what each samples (CD: the best of K draws by reward; CARDS: rejection sampling of
/// q(v)·min(1, exp((r(v) − τ)/β))).
/// </summary>
public class SegmentSearchTests
{
    static readonly string[] Prompts = { "abc", "hello", "q" };
    const int Vocab = 40;

    static (CausalLM Lm, RewardModel Rm) Models()
    {
        var config = TinyModels.LlamaConfig(Vocab);
        var lm = TinyModels.RandomLM(config, seed: 7);
        lm.Tokenizer = new TestCharTokenizer(Vocab);
        var rm = TinyModels.RandomRM(config, seed: 99);
        rm.Tokenizer = lm.Tokenizer;
        return (lm, rm);
    }

    static void AssertSameOnBothEngines(CausalLM lm, IRewardModel rm, DecodingOptions options)
    {
        var cached = TextGenerator.Generate(lm, rm, Prompts, options);
        var naive = TextGenerator.Generate(lm, rm, Prompts, options with { Engine = DecodingEngine.Naive });
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(naive[i].TokenIds, cached[i].TokenIds);
            Assert.Equal(naive[i].GuideReward!.Value, cached[i].GuideReward!.Value, 4);
        }
    }

    [Fact]
    public void Controlled_decoding_is_the_same_on_the_cached_engine_and_the_cache_free_oracle()
    {
        var (lm, rm) = Models();
        AssertSameOnBothEngines(lm, rm, new DecodingOptions
        {
            Method = new ControlledDecodingOptions { Continuations = 3, BlockLength = 4, Temperature = 0.9 }, MaxNewTokens = 14, Seed = 2, StopAtEos = false,
        });
    }

    [Fact]
    public void Cards_is_the_same_on_the_cached_engine_and_the_cache_free_oracle_and_rejects_some_segments()
    {
        var (lm, rm) = Models();
        // Entropy 3.0 nats is near log 40 = 3.69 for this random LM: segments end early, so several are tested per row.
        var options = new DecodingOptions
        {
            Method = new CardsOptions { TargetReward = 1.0, K = 8, EntropyThreshold = 3.0 }, MaxNewTokens = 16, Seed = 5, StopAtEos = false,
        };
        AssertSameOnBothEngines(lm, rm, options);
        var calls = new MethodCalls();
        var tok = lm.Tokenizer!;
        var ids = Prompts.Select(p => tok.Encode(p, addBos: true)).ToArray();
        var ctx = new DecodingContext(tok, 2, false, [], 16);
        options.Method.As<ISearchOptions>().CreateSearch().Run(new SearchContext(Engines.For(lm, DecodingEngine.Cached), rm, options, ctx) { Calls = calls }, ids, [0, 1, 2]);
        Assert.Equal(3 * 16, calls.Tokens);
        Assert.True(calls.RewardModel > 3 + 3, $"{calls.RewardModel} RM calls for 3 prompts"); // prompt rewards + at least one segment each
        Assert.True(calls.LanguageModel >= calls.Tokens, $"{calls.LanguageModel} LM calls for {calls.Tokens} tokens");
    }

    [Fact]
    public void Controlled_decoding_written_out_forks_k_samples_per_block_and_keeps_the_best_prefix()
    {
        var (lm, rm) = Models();
        const int k = 3, m = 4, maxNew = 10;
        var options = new DecodingOptions { Method = new ControlledDecodingOptions { Continuations = k, BlockLength = m }, MaxNewTokens = maxNew, Seed = 9, StopAtEos = false };
        var got = TextGenerator.Generate(lm, rm, ["hello"], options).Single();

        var prompt = lm.Tokenizer!.Encode("hello", addBos: true);
        var random = Enumerable.Range(0, k).Select(j => DecodingSteps.RowRandom(9, 0, j)).ToArray();
        var accepted = new List<int>();
        double reward = 0;
        using (no_grad())
            while (accepted.Count < maxNew)
            {
                var blocks = new List<int>[k];
                var rewards = new double[k];
                for (int j = 0; j < k; j++)
                {
                    blocks[j] = new List<int>(accepted);
                    for (int s = 0; s < m && blocks[j].Count < maxNew; s++)
                    {
                        var logits = lm.Logits(tensor(prompt.Concat(blocks[j]).Select(i => (long)i).ToArray()).unsqueeze(0))[0, -1];
                        blocks[j].Add(DecodingSteps.SampleSoftmax(logits.log_softmax(-1).data<float>().ToArray(), 1.0, random[j]));
                    }
                    var seq = tensor(prompt.Concat(blocks[j]).Select(i => (long)i).ToArray()).unsqueeze(0);
                    rewards[j] = rm.SequenceRewards(seq, ones_like(seq, dtype: ScalarType.Bool))[0].item<float>();
                }
                int best = Enumerable.Range(0, k).Aggregate((a, b) => rewards[b] > rewards[a] ? b : a);
                accepted = blocks[best];
                reward = rewards[best];
            }
        Assert.Equal(accepted.ToArray(), got.TokenIds);
        Assert.Equal(reward, got.GuideReward!.Value, 4);
    }

    /// <summary>χ² over the categories with expected count ≥ 5 (the rest pooled into one); critical value at p = 0.001 (Wilson–Hilferty).</summary>
    static void AssertChiSquare(int[] counts, double[] expected, int n)
    {
        double chi = 0, pooledExpected = 0;
        long pooledCount = 0;
        int categories = 0;
        for (int v = 0; v < counts.Length; v++)
        {
            if (expected[v] == 0) { Assert.Equal(0, counts[v]); continue; }
            double e = expected[v] * n;
            if (e < 5) { pooledExpected += e; pooledCount += counts[v]; continue; }
            chi += (counts[v] - e) * (counts[v] - e) / e;
            categories++;
        }
        if (pooledExpected > 0) { chi += (pooledCount - pooledExpected) * (pooledCount - pooledExpected) / pooledExpected; categories++; }
        int df = categories - 1;
        double a = 2.0 / (9 * df);
        double critical = df * Math.Pow(1 - a + 3.09 * Math.Sqrt(a), 3);
        Assert.True(chi < critical, $"chi-square {chi:F2} with {df} degrees of freedom (critical {critical:F2} at p = 0.001)");
    }

    /// <summary>First-token probabilities of the LM after "ab" and the reward of "ab" + v for every v.</summary>
    static (double[] P, double[] R) FirstToken(CausalLM lm, RewardModel rm)
    {
        var prompt = lm.Tokenizer!.Encode("ab", addBos: true).Select(i => (long)i).ToArray();
        using var _ = no_grad();
        var p = lm.Logits(tensor(prompt).unsqueeze(0))[0, -1].softmax(-1).to(ScalarType.Float64).data<double>().ToArray();
        var r = new double[Vocab];
        for (int v = 0; v < Vocab; v++)
        {
            var seq = tensor(prompt.Append(v).ToArray()).unsqueeze(0);
            r[v] = rm.SequenceRewards(seq, ones_like(seq, dtype: ScalarType.Bool))[0].item<float>();
        }
        return (p, r);
    }

    static int[] FirstTokenCounts(CausalLM lm, RewardModel rm, IMethodOptions method, int n)
    {
        var options = new DecodingOptions { Method = method, MaxNewTokens = 1, Seed = 17, StopAtEos = false, BatchSize = 64 };
        var counts = new int[Vocab];
        foreach (var r in TextGenerator.Generate(lm, rm, Enumerable.Repeat("ab", n).ToList(), options)) counts[r.TokenIds[0]]++;
        return counts;
    }

    [Fact]
    public void Controlled_decoding_with_two_continuations_draws_the_better_of_two_lm_samples_chi_square()
    {
        var (lm, rm) = Models();
        var (p, r) = FirstToken(lm, rm);
        // P(v) = p(v)² + 2·p(v)·Σ_{u: r(u) < r(v)} p(u): both draws are v, or one is v and the other worse.
        var expected = Enumerable.Range(0, Vocab).Select(v => p[v] * p[v] + 2 * p[v] * Enumerable.Range(0, Vocab).Where(u => r[u] < r[v]).Sum(u => p[u])).ToArray();
        Assert.Equal(1.0, expected.Sum(), 6);
        const int n = 3000;
        AssertChiSquare(FirstTokenCounts(lm, rm, new ControlledDecodingOptions { Continuations = 2, BlockLength = 1 }, n), expected, n);
    }

    [Fact]
    public void Cards_accepts_a_segment_with_probability_min_1_exp_r_minus_tau_over_beta_chi_square()
    {
        var (lm, rm) = Models();
        var (p, r) = FirstToken(lm, rm);
        const int k = 6;
        const double t = 0.7, beta = 0.7;
        // q: the top-6 at temperature 0.7; one-token responses, so τ = τ₀ = (1 − α)·r(prompt) + α·r* for every segment.
        var top = Enumerable.Range(0, Vocab).OrderByDescending(v => p[v]).Take(k).ToArray();
        var q = new double[Vocab];
        foreach (int v in top) q[v] = Math.Exp(Math.Log(p[v]) / t);
        double zq = q.Sum();
        var prompt = lm.Tokenizer!.Encode("ab", addBos: true);
        double promptReward;
        using (no_grad())
        {
            var seq = tensor(prompt.Select(i => (long)i).ToArray()).unsqueeze(0);
            promptReward = rm.SequenceRewards(seq, ones_like(seq, dtype: ScalarType.Bool))[0].item<float>();
        }
        // r* set so that acceptance is partial: about the mean of the candidates' rewards.
        double target = top.Average(v => r[v]);
        var method = new CardsOptions { TargetReward = target, K = k, Temperature = t, Beta = beta };
        double tau = method.Threshold(promptReward, 0, 1);
        Assert.Equal(Math.Min(0.5 * promptReward + 0.5 * target, target), tau, 9); // capped at r*, as their code caps it
        var accept = q.Select((x, v) => x / zq * method.AcceptanceProbability(r[v], tau)).ToArray();
        Assert.True(top.Any(v => method.AcceptanceProbability(r[v], tau) < 0.9), "some candidate must be rejected often for the test to see the rule");
        // 20 rejections before the fallback: its share is (1 − Σ accept)^21, negligible here.
        double acceptRate = accept.Sum();
        Assert.True(Math.Pow(1 - acceptRate, 21) < 1e-4, $"acceptance rate {acceptRate}");
        var expected = accept.Select(a => a / acceptRate).ToArray();
        const int n = 2000;
        AssertChiSquare(FirstTokenCounts(lm, rm, method, n), expected, n);
    }

    [Fact]
    public void Cards_without_a_target_reward_and_cd_with_a_bad_block_are_refused_naming_the_option()
    {
        Assert.Contains("--target-reward", Assert.Throws<PargsException>(() => new CardsOptions().Validate(Vocab)).Message);
        Assert.Contains("-M must be at least 1", Assert.Throws<PargsException>(() => new ControlledDecodingOptions { BlockLength = 0 }.Validate(Vocab)).Message);
        var request = new GenerationRequest { Method = "cd", Settings = new MethodSettings { K = 3 } };
        Assert.Contains("-k has no effect with --method cd", Assert.Throws<PargsException>(() => request.Resolve(null, Vocab)).Message);
    }
}

static class OptionsExtensions
{
    public static T As<T>(this IMethodOptions options) where T : class => (T)options;
}
