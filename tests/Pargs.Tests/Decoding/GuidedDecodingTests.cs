using TorchSharp;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tests.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Decoding;

public class GuidedDecodingTests
{
    static readonly string[] Prompts = { "abc", "hello", "q", "decoding" };

    static (CausalLM Lm, RewardModel Rm) Models(int vocab = 40)
    {
        var config = TinyModels.LlamaConfig(vocab);
        var lm = TinyModels.RandomLM(config, seed: 7);
        lm.Tokenizer = new TestCharTokenizer(vocab);
        var rm = TinyModels.RandomRM(config, seed: 99);
        return (lm, rm);
    }

    /// <summary>A registered method's options from the settings a test gives (as the CLI would).</summary>
    internal static IMethodOptions Method(string name, int? k = null, double? w = null, int? n = null)
        => DecodingMethods.Parse(name).Options(new MethodSettings { K = k, W = w, N = n });

    static IReadOnlyList<GenerationResult> Run(CausalLM lm, IRewardModel? rm, DecodingOptions o, IReadOnlyList<string>? prompts = null)
        => TextGenerator.Generate(lm, rm, prompts ?? Prompts, o);

    [Theory]
    [InlineData("greedy")]
    [InlineData("topk")]
    [InlineData("args")]
    [InlineData("pargs-g")]
    [InlineData("pargs")]
    public void Fast_path_chooses_the_same_tokens_with_the_same_scores_as_the_naive_reference(string method)
    {
        var (lm, rm) = Models();
        var options = new DecodingOptions { Method = Method(method, k: 5, w: 1.5), MaxNewTokens = 12, Seed = 3, StopAtEos = false, BatchSize = 4 };
        OracleComparison.AssertFastMatchesNaive(lm, rm, options, Prompts);
    }

    [Theory]
    [InlineData("pargs")]
    [InlineData("topk")]
    [InlineData("topp")]
    [InlineData("best-of-n")]
    public void Sampling_is_reproducible_for_a_seed_and_changes_with_it(string method)
    {
        var (lm, rm) = Models();
        var o = new DecodingOptions { Method = Method(method, k: 8, w: 1.0, n: 3), MaxNewTokens = 16, Seed = 11, StopAtEos = false };
        var a = Run(lm, rm, o).Select(r => r.Output).ToList();
        var b = Run(lm, rm, o).Select(r => r.Output).ToList();
        var c = Run(lm, rm, o with { Seed = 12 }).Select(r => r.Output).ToList();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Theory]
    [InlineData("pargs")]
    [InlineData("args")]
    [InlineData("topp")]
    public void Rows_in_a_ragged_batch_give_the_same_output_as_alone(string method)
    {
        var (lm, rm) = Models();
        var o = new DecodingOptions { Method = Method(method, k: 6, w: 2.0), MaxNewTokens = 10, Seed = 5, StopAtEos = false, BatchSize = 4 };
        var together = Run(lm, rm, o).Select(r => r.Output).ToList();
        var alone = Run(lm, rm, o with { BatchSize = 1 }).Select(r => r.Output).ToList();
        Assert.Equal(alone, together);
    }

    [Fact]
    public void With_w_zero_pargs_is_topk_sampling_and_args_is_greedy()
    {
        var (lm, rm) = Models();
        var o = new DecodingOptions { MaxNewTokens = 10, Seed = 21, StopAtEos = false };
        Assert.Equal(
            Run(lm, null, o with { Method = new TopKOptions { K = 6 } }).Select(r => r.Output),
            Run(lm, rm, o with { Method = new PargsOptions { K = 6, W = 0.0 } }).Select(r => r.Output));
        Assert.Equal(
            Run(lm, null, o with { Method = new GreedyOptions() }).Select(r => r.Output),
            Run(lm, rm, o with { Method = new ArgsOptions { K = 6, W = 0.0 } }).Select(r => r.Output));
    }

    [Fact]
    public void Pargs_samples_candidates_from_softmax_of_log_p_plus_w_r()
    {
        // A 3-token vocabulary besides the specials (ids 3, 4, 5) and k = 3: every token is a candidate.
        var config = TinyModels.LlamaConfig(vocab: 6);
        var lm = TinyModels.RandomLM(config, seed: 5);
        lm.Tokenizer = new TestCharTokenizer(6);
        var rm = TinyModels.RandomRM(config, seed: 6, headScale: 3f);
        const double w = 0.8;
        var prompt = new long[] { 1, 3, 4 };
        // The expected distribution, computed directly: full forwards, no cache, no decoding code.
        using var _ = no_grad();
        var logp = lm.Logits(tensor(prompt).unsqueeze(0))[0, -1].log_softmax(-1).data<float>().ToArray();
        var (top, topIds) = tensor(logp).topk(3);
        var candidates = topIds.data<long>().ToArray();
        var expected = candidates.Select(v =>
        {
            var seq = tensor(prompt.Append(v).ToArray()).unsqueeze(0);
            double r = rm.SequenceRewards(seq, ones_like(seq, dtype: ScalarType.Bool))[0].item<float>();
            return logp[v] + w * r;
        }).ToArray();
        double max = expected.Max();
        var probs = expected.Select(s => Math.Exp(s - max)).ToArray();
        probs = probs.Select(p => p / probs.Sum()).ToArray();
        Assert.True(probs.Min() > 0.05, "pick a seed where every candidate is plausible");

        const int draws = 3000;
        var o = new DecodingOptions { Method = new PargsOptions { K = 3, W = w }, MaxNewTokens = 1, Seed = 1, StopAtEos = false, BatchSize = 500 };
        var outputs = TextGenerator.Generate(lm, rm, Enumerable.Repeat("ab", draws).ToList(), o);
        var counts = candidates.Select(v => outputs.Count(r => r.TokenIds[0] == v)).ToArray();
        Assert.Equal(draws, counts.Sum());
        double chi2 = counts.Select((c, j) => Math.Pow(c - draws * probs[j], 2) / (draws * probs[j])).Sum();
        Assert.True(chi2 < 13.8, $"chi-square {chi2:F2} (2 dof, p = 0.001 critical 13.8); counts {string.Join(",", counts)} expected {string.Join(",", probs.Select(p => (p * draws).ToString("F0")))}");
    }

    [Fact]
    public void Best_of_n_returns_the_highest_reward_sample_and_with_n_1_is_topk()
    {
        var (lm, rm) = Models();
        var o = new DecodingOptions { Method = new BestOfNOptions { K = 6, N = 1 }, MaxNewTokens = 8, Seed = 4, StopAtEos = false };
        Assert.Equal(
            Run(lm, null, o with { Method = new TopKOptions { K = 6 } }).Select(r => r.Output),
            Run(lm, rm, o).Select(r => r.Output));
        var best = Run(lm, rm, o with { Method = new BestOfNOptions { K = 6, N = 5 } });
        var single = Enumerable.Range(0, 5).Select(j => Run(lm, rm, o).First()).ToList();
        Assert.All(best, r => Assert.NotNull(r.GuideReward));
        Assert.True(best[0].GuideReward >= single[0].GuideReward - 1e-5);
    }

    [Fact]
    public void Bad_settings_are_clear_errors()
    {
        var (lm, rm) = Models();
        var o = new DecodingOptions { Method = new PargsOptions(), MaxNewTokens = 4 };
        Assert.Contains("larger than the vocabulary", Assert.Throws<PargsException>(() => Run(lm, rm, o with { Method = new PargsOptions { K = 500 } })).Message);
        Assert.Contains("-k", Assert.Throws<PargsException>(() => Run(lm, rm, o with { Method = new PargsOptions { K = 0 } })).Message);
        Assert.Contains("empty", Assert.Throws<PargsException>(() => Run(lm, rm, o, new[] { "" })).Message);
        Assert.Contains("stop string is empty", Assert.Throws<PargsException>(() => Run(lm, rm, o with { StopStrings = new[] { "." , "" } })).Message);
        Assert.Contains("context", Assert.Throws<PargsException>(() => Run(lm, rm, o with { MaxNewTokens = 200 })).Message);
        Assert.Contains("reward model", Assert.Throws<PargsException>(() => Run(lm, null, o)).Message);
        var otherVocab = TinyModels.RandomRM(TinyModels.LlamaConfig(50), seed: 1);
        Assert.Contains("vocabulary", Assert.Throws<PargsException>(() => Run(lm, otherVocab, o)).Message);
        var nan = TinyModels.RandomRM(TinyModels.LlamaConfig(40), seed: 1);
        using var notANumber = float.NaN.ToScalar(); // held: see Pargs.Models.HeldScalars
        using (no_grad()) nan.ScoreWeight.fill_(notANumber);
        Assert.Contains("reward model gave a candidate the reward NaN", Assert.Throws<PargsException>(() => Run(lm, nan, o)).Message);
        // w·r beyond float32 is the user's -w, not a broken model; NaN logits are the LM's, whatever the method.
        Assert.Contains("overflowed", Assert.Throws<PargsException>(() => Run(lm, rm, o with { Method = new PargsOptions { W = 1e300 } })).Message);
        var nanLm = TinyModels.RandomLM(TinyModels.LlamaConfig(40), seed: 2);
        nanLm.Tokenizer = new TestCharTokenizer(40);
        using (no_grad()) foreach (var p in nanLm.parameters()) p.fill_(notANumber);
        Assert.Contains("language model", Assert.Throws<PargsException>(() => Run(nanLm, null, o with { Method = new TopKOptions() })).Message);
    }
}
