using Pargs.Data;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tests.Dpo;
using Pargs.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Tests.Training;

/// <summary>
/// FaRMA's and GenARM's training losses against a written-out computation from one unpadded forward per sequence
/// (host arithmetic in double), their gradients against central finite differences in float64, and a short run.
/// </summary>
public class VocabularyRewardTrainingTests
{
    static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    static VocabularyRewardModel Rm(RewardObjective objective, long seed = 5, bool float64 = false)
    {
        var lm = DpoTestData.Policy(seed: seed);
        if (float64) lm.to(ScalarType.Float64);
        lm.train();
        return new VocabularyRewardModel(lm, objective);
    }

    /// <summary>Logits [T][V] of one sequence run alone (no padding anywhere).</summary>
    static double[][] Logits(CausalLM model, int[] sequence)
    {
        using var _ = no_grad();
        var logits = model.Logits(tensor(sequence.Select(i => (long)i).ToArray()).unsqueeze(0))[0].to(ScalarType.Float64);
        return Enumerable.Range(0, sequence.Length).Select(t => logits[t].data<double>().ToArray()).ToArray();
    }

    /// <summary>
    /// FaRMA written out: r(x, y1..t) = logits[|x| + t − 2][y_t]; BT over whole (padded) responses; max constraint over the
    /// chosen prefixes t = 1 … min(real length, L − 1), target max_v logits[|x| + t − 1][v] (or <paramref name="frozen"/>).
    /// </summary>
    static (double Bt, double Max, List<double> Targets) FarmaByHand(CausalLM model, IReadOnlyList<TokenizedPair> pairs, List<double>? frozen = null)
    {
        double bt = 0, max = 0;
        int constraints = 0;
        var targets = new List<double>();
        foreach (var pair in pairs)
        {
            var chosen = Logits(model, pair.ChosenSequence);
            var rejected = Logits(model, pair.RejectedSequence);
            int p = pair.PromptIds.Length, l = pair.ResponseLength;
            double Reward(double[][] logits, int[] seq, int t) => logits[p + t - 2][seq[p + t - 1]];
            bt += -LogSigmoid(Reward(chosen, pair.ChosenSequence, l) - Reward(rejected, pair.RejectedSequence, l)) / pairs.Count;
            for (int t = 1; t <= Math.Min(pair.ChosenLength, l - 1); t++)
            {
                double target = chosen[p + t - 1].Max();
                targets.Add(target);
                double c = frozen?[targets.Count - 1] ?? target;
                max += Math.Pow(Reward(chosen, pair.ChosenSequence, t) - c, 2);
                constraints++;
            }
        }
        return (bt, max / constraints, targets);
    }

    [Fact]
    public void Farma_losses_equal_the_written_out_bradley_terry_and_max_constraint()
    {
        var rm = Rm(RewardObjective.Farma);
        var pairs = DpoTestData.EchoPairs(5, seed: 3);
        pairs.Add(DpoTestData.Pair([1, 5], [5, 5], [7, 8, 9, 10]));
        Assert.Contains(pairs, p => p.ChosenLength < p.ResponseLength); // EOS padding on the chosen side is exercised
        var result = FarmaLoss.Compute(rm, pairs);
        var (bt, max, _) = FarmaByHand(rm.Model, pairs);
        Assert.Equal(bt, result.BradleyTerry.to(ScalarType.Float64).item<double>(), 5);
        Assert.Equal(max, result.MaxConstraint.to(ScalarType.Float64).item<double>(), 4);
    }

    [Fact]
    public void GenArm_loss_equals_the_written_out_log_sigmoid_of_beta_times_the_log_probability_difference()
    {
        var rm = Rm(RewardObjective.Genarm);
        var pairs = DpoTestData.EchoPairs(5, seed: 6);
        const double beta = 0.05;
        var result = GenArmLoss.Compute(rm.Model, pairs, beta, eos: 2);
        double expected = 0;
        foreach (var pair in pairs)
        {
            double Sum(int[] padded, int length)
            {
                int[] response = [.. padded[..length], 2];
                int[] sequence = [.. pair.PromptIds, .. response];
                var logits = Logits(rm.Model, sequence);
                double s = 0;
                for (int t = pair.PromptIds.Length; t < sequence.Length; t++)
                {
                    var row = logits[t - 1];
                    double m = row.Max();
                    s += row[sequence[t]] - (m + Math.Log(row.Sum(x => Math.Exp(x - m))));
                }
                return s;
            }
            expected += -LogSigmoid(beta * (Sum(pair.ChosenIds, pair.ChosenLength) - Sum(pair.RejectedIds, pair.RejectedLength))) / pairs.Count;
        }
        Assert.Equal(expected, result.Loss.to(ScalarType.Float64).item<double>(), 5);
    }

    /// <summary>Central differences of <paramref name="loss"/> against autograd on a few weights of several tensors (float64).</summary>
    static void AssertGradientMatchesFiniteDifferences(CausalLM model, Func<Tensor> autogradLoss, Func<double> loss)
    {
        model.zero_grad();
        autogradLoss().backward();
        var rng = new Random(1);
        const double h = 1e-6;
        foreach (var (name, p) in model.named_parameters())
        {
            if (!(name.Contains("embed") || name.Contains("q_proj") || name.Contains("down_proj") || name == "lm_head.weight" || name == "model.norm.weight")) continue;
            var grad = p.grad!.flatten();
            var flat = p.detach().view(-1);
            for (int trial = 0; trial < 3; trial++)
            {
                long index = rng.NextInt64(flat.shape[0]);
                double original = flat[index].item<double>();
                double At(double value)
                {
                    using (no_grad()) flat[index] = value;
                    return loss();
                }
                double numeric = (At(original + h) - At(original - h)) / (2 * h);
                using (no_grad()) flat[index] = original;
                double analytic = grad[index].item<double>();
                Assert.True(Math.Abs(numeric - analytic) <= 1e-6 + 1e-4 * Math.Abs(analytic), $"{name}[{index}]: finite difference {numeric}, autograd {analytic}");
            }
        }
    }

    [Fact]
    public void Farma_gradients_match_finite_differences_with_the_target_frozen_as_the_semi_gradient_says()
    {
        var rm = Rm(RewardObjective.Farma, float64: true);
        var pairs = DpoTestData.EchoPairs(3, seed: 4);
        // BT + max with the gradient through the target: the loss's true gradient.
        AssertGradientMatchesFiniteDifferences(rm.Model,
            () => { var f = FarmaLoss.Compute(rm, pairs, detachTarget: false); return f.BradleyTerry.Plus(f.MaxConstraint); },
            () => { var (bt, max, _) = FarmaByHand(rm.Model, pairs); return bt + max; });
        // Detached: the gradient of the loss whose targets are the constants they were at this point.
        var (_, _, targets) = FarmaByHand(rm.Model, pairs);
        AssertGradientMatchesFiniteDifferences(rm.Model,
            () => FarmaLoss.Compute(rm, pairs, detachTarget: true).MaxConstraint,
            () => FarmaByHand(rm.Model, pairs, frozen: targets).Max);
    }

    [Fact]
    public void GenArm_gradient_matches_finite_differences()
    {
        var rm = Rm(RewardObjective.Genarm, float64: true);
        var pairs = DpoTestData.EchoPairs(3, seed: 8);
        AssertGradientMatchesFiniteDifferences(rm.Model,
            () => GenArmLoss.Compute(rm.Model, pairs, 0.7, eos: 2).Loss,
            () => { using var _ = no_grad(); return GenArmLoss.Compute(rm.Model, pairs, 0.7, eos: 2).Loss.item<double>(); });
    }

    [Theory]
    [InlineData(RewardObjective.Farma)]
    [InlineData(RewardObjective.Genarm)]
    public void A_short_run_learns_the_preference_and_farma_alternates_its_two_losses(RewardObjective objective)
    {
        var rm = Rm(objective, seed: 11);
        var train = DpoTestData.EchoPairs(24, seed: 1);
        var eval = DpoTestData.EchoPairs(24, seed: 2);
        var options = new VocabularyRewardTrainingOptions
        {
            Objective = objective, Beta = 0.5,
            Loop = new TrainingOptions { LearningRate = 3e-3, BatchSize = 8, MaxSteps = 40, Schedule = Schedule.Constant, LogEvery = 1000 },
        };
        var trainer = new VocabularyRewardTrainer(rm, train, eval, options);
        var before = trainer.Evaluate()!;
        if (objective == RewardObjective.Farma)
        {
            // Micro-batch 0 optimises Bradley–Terry, micro-batch 1 the max constraint.
            using var _ = no_grad();
            var (l0, m0) = trainer.Loss(train.Take(8).ToList(), 0);
            var (l1, m1) = trainer.Loss(train.Take(8).ToList(), 1);
            Assert.Equal(m0["bt_loss"], l0.to(ScalarType.Float64).item<double>(), 6);
            Assert.Equal(m1["max_loss"], l1.to(ScalarType.Float64).item<double>(), 6);
        }
        trainer.Train();
        var after = trainer.Evaluate()!;
        Assert.True(after["accuracy"] > before["accuracy"] || after["accuracy"] == 1.0, $"accuracy {before["accuracy"]} → {after["accuracy"]}");
        // FaRMA's preference is what Bradley–Terry measures; its max constraint moves as the rewards it is consistent with move.
        string lossName = objective == RewardObjective.Farma ? "bt_loss" : "loss";
        Assert.True(after[lossName] < before[lossName], $"{lossName} {before[lossName]} → {after[lossName]}");
    }
}
