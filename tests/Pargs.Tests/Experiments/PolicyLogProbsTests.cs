using Pargs.Checkpoints;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Experiments;
using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Tests.Experiments;

/// <summary>
/// The frontier's log-probabilities: log π of each sample read from the decoding trace equals log π written out
/// from full forwards of the models (top-k: softmax over the base LM's k best log-probs / T; GenARM: softmax of
/// log p + α·log π_r), the wrapped rule decodes exactly what the plain one does, and the trace's rows map to the
/// right prompts across batches (cached = naive).
/// </summary>
public class PolicyLogProbsTests
{
    static readonly string[] Prompts = ["Once upon a time", "Tim was sad because", "The little dog"];

    static DecodingOptions Options(IMethodOptions method, DecodingEngine engine = DecodingEngine.Cached) => new()
    {
        Method = method, Seed = 3, MaxNewTokens = 12, BatchSize = 2, Engine = engine, // two batches: 2 + 1 rows
    };

    /// <summary>[T, V] log-softmax of the base LM over prompt + drawn tokens, as doubles per position.</summary>
    static double[][] LogProbRows(CausalLM lm, int[] ids)
    {
        using var _ = no_grad();
        using var logp = lm.Logits(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0)).log_softmax(-1)[0].to(ScalarType.Float64);
        var flat = logp.data<double>().ToArray();
        int vocab = (int)logp.shape[1];
        return Enumerable.Range(0, ids.Length).Select(t => flat.AsSpan(t * vocab, vocab).ToArray()).ToArray();
    }

    static double LogSoftmax(double[] scores, int at)
    {
        double max = scores.Max();
        return scores[at] - max - Math.Log(scores.Sum(s => Math.Exp(s - max)));
    }

    [Fact]
    public void Top_k_log_probs_match_the_base_lm_renormalised_over_its_k_best_tokens()
    {
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        var method = new TopKOptions { K = 5, Temperature = 0.8 };
        var plain = TextGenerator.Generate(lm, null, Prompts, Options(method));
        var (results, drawn, logProbs) = PolicyLogProbs.Generate(lm, null, Prompts, Options(method));

        for (int p = 0; p < Prompts.Length; p++)
        {
            Assert.Equal(plain[p].TokenIds, results[p].TokenIds); // the wrapper changes nothing of the decoding
            Assert.Equal(results[p].TokenIds.Length + (results[p].FinishReason == "eos" ? 1 : 0), drawn[p].Length);
            var promptIds = lm.Tokenizer!.Encode(Prompts[p], addBos: true);
            var rows = LogProbRows(lm, [.. promptIds, .. drawn[p]]);
            double expected = 0, expectedBase = 0;
            for (int t = 0; t < drawn[p].Length; t++)
            {
                var row = rows[promptIds.Length - 1 + t];
                var top = Enumerable.Range(0, row.Length).OrderByDescending(v => row[v]).Take(5).ToList();
                Assert.Contains(drawn[p][t], top);
                expected += LogSoftmax(top.Select(v => row[v] / 0.8).ToArray(), top.IndexOf(drawn[p][t]));
                expectedBase += row[drawn[p][t]];
            }
            Assert.Equal(expected, logProbs[p], 1e-4);
            Assert.Equal(expectedBase, PolicyLogProbs.BaseLogProb(lm, promptIds, drawn[p]), 1e-4);
        }
    }

    [Fact]
    public void GenArm_log_probs_match_log_p_plus_alpha_log_pi_r_over_the_vocabulary_on_both_engines()
    {
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        // An autoregressive reward model that is the base LM itself: π_decode ∝ p^(1 + α), written out below.
        VocabularyRewardModel rm;
        using (var contents = CheckpointLoader.Load(TestPaths.Stories260KGguf))
            rm = VocabularyRewardModel.FromCausalLM(contents, RewardObjective.Genarm);
        using var _ = rm;
        rm.Model.eval();
        const double alpha = 1.5;
        var method = new GenArmOptions { Alpha = alpha };
        var (results, drawn, logProbs) = PolicyLogProbs.Generate(lm, rm, Prompts, Options(method));
        var naive = PolicyLogProbs.Generate(lm, rm, Prompts, Options(method, DecodingEngine.Naive));

        for (int p = 0; p < Prompts.Length; p++)
        {
            Assert.Equal(drawn[p], naive.Drawn[p]);
            Assert.Equal(logProbs[p], naive.LogProbs[p], 1e-4);
            var promptIds = lm.Tokenizer!.Encode(Prompts[p], addBos: true);
            var rows = LogProbRows(lm, [.. promptIds, .. drawn[p]]);
            double expected = 0;
            for (int t = 0; t < drawn[p].Length; t++)
                expected += LogSoftmax(rows[promptIds.Length - 1 + t].Select(l => (1 + alpha) * l).ToArray(), drawn[p][t]);
            Assert.Equal(expected, logProbs[p], 1e-4);
            Assert.True(results[p].TokenIds.Length > 0);
        }
    }

    [Fact]
    public void Pargs_log_probs_agree_between_the_cached_and_the_naive_engine()
    {
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        using var rm = RewardModel.Load(TestPaths.ShippedPartialRm);
        var method = new PargsOptions { K = 6, W = 2 };
        var cached = PolicyLogProbs.Generate(lm, rm, Prompts, Options(method));
        var naive = PolicyLogProbs.Generate(lm, rm, Prompts, Options(method, DecodingEngine.Naive));
        for (int p = 0; p < Prompts.Length; p++)
        {
            Assert.Equal(cached.Drawn[p], naive.Drawn[p]);
            Assert.Equal(cached.LogProbs[p], naive.LogProbs[p], 1e-4);
            Assert.True(cached.LogProbs[p] <= 0);
        }
    }

    [Fact]
    public void Only_methods_that_sample_each_token_from_a_softmax_define_a_policy()
    {
        Assert.Equal(0.7, PolicyLogProbs.TemperatureOf(new TopKOptions { Temperature = 0.7 }));
        Assert.NotNull(PolicyLogProbs.TemperatureOf(new PargsOptions()));
        Assert.NotNull(PolicyLogProbs.TemperatureOf(new FarmaOptions()));
        Assert.NotNull(PolicyLogProbs.TemperatureOf(new GenArmOptions()));
        Assert.Null(PolicyLogProbs.TemperatureOf(new ArgsOptions()));
        Assert.Null(PolicyLogProbs.TemperatureOf(new PargsGreedyOptions()));
        Assert.Null(PolicyLogProbs.TemperatureOf(new FarmaGreedyOptions()));
        Assert.Null(PolicyLogProbs.TemperatureOf(new BestOfNOptions()));
        Assert.Null(PolicyLogProbs.TemperatureOf(new ControlledDecodingOptions()));
        Assert.Null(PolicyLogProbs.TemperatureOf(new CardsOptions { TargetReward = 1 }));
        Assert.Null(PolicyLogProbs.TemperatureOf(new TopPOptions())); // nucleus: its candidate set is not the traced top-k
        // log softmax in double, stable for large scores.
        Assert.Equal(Math.Log(Math.Exp(2) / (Math.Exp(1) + Math.Exp(2))), PolicyLogProbs.LogSoftmaxAt([1f, 2f], 1, 1.0), 12);
        Assert.Equal(-Math.Log(2), PolicyLogProbs.LogSoftmaxAt([1000f, 1000f], 0, 0.5), 12);
    }

    [Fact]
    public void Cards_target_quantile_interpolates_between_order_statistics_like_numpy()
    {
        // numpy.quantile([3, 1, 4, 1, 5], 0.9) = 4.6; 0.5 → 3; 0.25 → 1
        Assert.Equal(4.6, CardsTarget.Quantile([3, 1, 4, 1, 5], 0.9), 12);
        Assert.Equal(3.0, CardsTarget.Quantile([3, 1, 4, 1, 5], 0.5), 12);
        Assert.Equal(1.0, CardsTarget.Quantile([3, 1, 4, 1, 5], 0.25), 12);
        Assert.Equal(7.0, CardsTarget.Quantile([7], 0.9), 12);
        Assert.Throws<PargsException>(() => CardsTarget.Quantile([], 0.9));
    }
}
