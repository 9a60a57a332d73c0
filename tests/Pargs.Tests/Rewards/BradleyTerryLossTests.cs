using Pargs.Data;
using Pargs.Rewards;
using Pargs.Tests.Models;
using Pargs.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Pargs.Tests.Rewards;

public class BradleyTerryLossTests
{
    static RewardModel TinyRm(long seed = 3)
    {
        var model = RewardModel.Create(RewardTestData.TinyLlama(vocab: 23), seed);
        TinyModels.Randomize(model, seed); // every weight random, so no parameter is trivially inert
        return model;
    }

    static Dictionary<string, Tensor> Gradients(RewardModel model, Func<Tensor> loss)
    {
        model.zero_grad();
        loss().backward();
        return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
    }

    /// <summary>The oracle: every prefix pair materialised as its own pair of sequences, each run alone.</summary>
    static Tensor MaterializedLoss(RewardModel model, IReadOnlyList<TokenizedPair> pairs, double center)
    {
        var chosen = new List<Tensor>();
        var rejected = new List<Tensor>();
        var margins = new List<float>();
        foreach (var pair in pairs)
            foreach (var prefix in pair.MaterializePrefixes())
            {
                Tensor Reward(int[] ids) => model.SequenceRewards(tensor(ids.Select(i => (long)i).ToArray(), 1, ids.Length),
                    ones(1, ids.Length, dtype: ScalarType.Bool));
                chosen.Add(Reward(prefix.WinnerIds));
                rejected.Add(Reward(prefix.LoserIds));
                margins.Add((float)(pair.Margin ?? 0));
            }
        return BradleyTerryLoss.Compute(cat(chosen, 0), cat(rejected, 0), tensor(margins.ToArray()), center).Loss;
    }

    [Fact]
    public void OneForwardPartialLossAndGradientsEqualMaterializedPrefixPairs()
    {
        var model = TinyRm();
        var pairs = RewardTestData.RandomPairs(5, vocab: 23, seed: 9, margins: true);
        Assert.Contains(pairs, p => p.PromptIds.Length != pairs[0].PromptIds.Length); // ragged: right padding is exercised
        const double center = 0.01;

        var fast = RewardTrainer.Loss(model, pairs, RewardObjective.Partial, center).Loss;
        var slow = MaterializedLoss(model, pairs, center);
        Assert.Equal(slow.item<float>(), fast.item<float>(), 1e-5);

        var fastGrad = Gradients(model, () => RewardTrainer.Loss(model, pairs, RewardObjective.Partial, center).Loss);
        var slowGrad = Gradients(model, () => MaterializedLoss(model, pairs, center));
        foreach (var (name, g) in slowGrad)
        {
            double diff = (fastGrad[name] - g).abs().max().item<float>();
            Assert.True(diff <= 1e-5, $"{name}: gradients differ by {diff}");
        }
        Assert.True(slowGrad["score.weight"].abs().sum().item<float>() > 0);
    }

    [Fact]
    public void FullObjectiveComparesOnlyWholeResponses()
    {
        var model = TinyRm();
        var pairs = RewardTestData.RandomPairs(4, vocab: 23, seed: 4);
        var batch = RewardPairBatch.Build(pairs, p => RewardTrainer.LossPrefixes(p, RewardObjective.Full));
        var (chosen, rejected) = batch.Rewards(model);
        var expectedChosen = pairs.Select(p => model.SequenceRewards(tensor(p.ChosenSequence.Select(i => (long)i).ToArray(), 1, p.SequenceLength),
            ones(1, p.SequenceLength, dtype: ScalarType.Bool)).item<float>()).ToArray();
        Assert.Equal(pairs.Count, (int)chosen.shape[0]);
        for (int n = 0; n < pairs.Count; n++) Assert.Equal(expectedChosen[n], chosen[n].item<float>(), 1e-5);
        Assert.Equal(pairs.Select(p => (long)p.ResponseLength), batch.PrefixLengths.data<long>().ToArray());
        Assert.False(rejected.isnan().any().item<bool>());
    }

    [Fact]
    public void LossMatchesTrlFormulaWithMarginAndCentering()
    {
        var w = tensor(new[] { 1.0f, -0.5f, 2.0f });
        var l = tensor(new[] { 0.0f, 0.5f, 2.5f });
        var m = tensor(new[] { 0.5f, 0.0f, 1.0f });
        var result = BradleyTerryLoss.Compute(w, l, m, centerRewardsCoefficient: 0.1);
        double Softplus(double x) => Math.Log(1 + Math.Exp(x));
        double expected = (Softplus(-(1 - 0 - 0.5)) + Softplus(-(-0.5 - 0.5)) + Softplus(-(2 - 2.5 - 1))) / 3
                          + 0.1 * (1 * 1 + 0 + 4.5 * 4.5) / 3;
        Assert.Equal(expected, result.Loss.item<float>(), 1e-5);
        Assert.Equal(1.0 / 3, result.Accuracy, 1e-12);
        Assert.Equal((1 - 1 - 0.5) / 3, result.Margin, 1e-6);
        Assert.Equal((0.5 + 0 + 2.25) / 3, result.MeanReward, 1e-6);
    }

    [Fact]
    public void GradientMatchesCentralFiniteDifferencesInDoublePrecision()
    {
        var model = TinyRm(seed: 5);
        model.to(ScalarType.Float64);
        var pairs = RewardTestData.RandomPairs(3, vocab: 23, seed: 2, margins: true);
        Tensor Loss() => RewardTrainer.Loss(model, pairs, RewardObjective.Partial, centerRewardsCoefficient: 0.05).Loss;
        var grads = Gradients(model, Loss);
        Assert.Equal(ScalarType.Float64, grads["score.weight"].dtype);

        var rng = new Random(1);
        var checkedParams = new[] { "score.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight", "model.norm.weight", "model.embed_tokens.weight" };
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        const double h = 1e-6;
        foreach (var name in checkedParams)
        {
            var flat = parameters[name].view(-1);
            var grad = grads[name].view(-1);
            for (int trial = 0; trial < 4; trial++)
            {
                long index = name == "model.embed_tokens.weight" ? 3 * 32 + rng.Next(32) : rng.Next((int)flat.shape[0]); // token 3 occurs in the data
                double original = flat[index].item<double>();
                double Perturbed(double value)
                {
                    using (no_grad()) flat[index] = value;
                    using (no_grad()) return Loss().item<double>();
                }
                double numeric = (Perturbed(original + h) - Perturbed(original - h)) / (2 * h);
                using (no_grad()) flat[index] = original;
                double analytic = grad[index].item<double>();
                Assert.True(Math.Abs(numeric - analytic) <= 1e-6 + 1e-4 * Math.Abs(analytic),
                    $"{name}[{index}]: finite difference {numeric}, autograd {analytic}");
            }
        }
    }
}
