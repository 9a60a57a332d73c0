using Pargs.Data;
using Pargs.Models;
using Pargs.Tests.Models;
using Pargs.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Pargs.Tests.Dpo;

public class DpoLossTests
{
    static double LogSigmoid(double x) => -Math.Log(1 + Math.Exp(-x));

    [Fact]
    public void LossAndMetricsMatchTheFormulaOnLiteralNumbers()
    {
        var result = DpoLoss.Compute(tensor(new[] { -1.0, -3.0 }), tensor(new[] { -2.0, -1.0 }),
            tensor(new[] { -1.5, -2.0 }), tensor(new[] { -1.5, -2.0 }), beta: 0.5);
        // pair 0: r_w = 0.5·0.5 = 0.25, r_l = 0.5·(−0.5) = −0.25, margin 0.5; pair 1: r_w = −0.5, r_l = 0.5, margin −1.
        double expected = -(LogSigmoid(0.5) + LogSigmoid(-1.0)) / 2;
        Assert.Equal(expected, result.Loss.item<double>(), 12);
        Assert.Equal((0.25 - 0.5) / 2, result.Metrics["rewards/chosen"], 12);
        Assert.Equal((-0.25 + 0.5) / 2, result.Metrics["rewards/rejected"], 12);
        Assert.Equal((0.5 - 1.0) / 2, result.Metrics["rewards/margins"], 12);
        Assert.Equal(0.5, result.Metrics["rewards/accuracies"], 12);
        Assert.Equal(-2.0, result.Metrics["logps/chosen"], 12);
        Assert.Equal(-1.5, result.Metrics["logps/rejected"], 12);
    }

    /// <summary>log p of each response token by hand (2-token vocabulary: log e^a / (e^a + e^b)) from unpadded forwards.</summary>
    static double HandLogProb(CausalLM model, int[] prompt, int[] response)
    {
        int[] sequence = [.. prompt, .. response];
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = model.Logits(tensor(sequence.Select(i => (long)i).ToArray(), [1, sequence.Length]))[0].to(ScalarType.Float64);
        double sum = 0;
        for (int t = prompt.Length; t < sequence.Length; t++)
        {
            double a = logits[t - 1, 0].item<double>(), b = logits[t - 1, 1].item<double>();
            double target = sequence[t] == 0 ? a : b;
            sum += target - Math.Log(Math.Exp(a) + Math.Exp(b));
        }
        return sum;
    }

    [Fact]
    public void TrainerLossEqualsAHandComputationOnATwoTokenVocabulary()
    {
        var config = TinyModels.LlamaConfig(vocab: 2) with { BosTokenId = 0, EosTokenId = 1 };
        var reference = TinyModels.RandomLM(config, seed: 5);
        var policy = TinyModels.RandomLM(config, seed: 6);
        // Unequal lengths: the shorter side is EOS-padded in storage; only its real tokens (+ one EOS) count.
        var pairs = new List<TokenizedPair>
        {
            new([0, 1, 0], [1, 1, 0, 1], [0, 1, 1, 1], [1, 2, 3, 4], null, 4, 2),
            new([0], [0, 0, 1], [1, 0, 1], [1, 2, 3], null, 2, 3),
        };
        const double beta = 0.3;
        var trainer = new DpoTrainer(policy, pairs, null, new DpoTrainingOptions { Beta = beta }, reference);
        var step = trainer.Forward([0, 1]);

        double loss = 0, accuracy = 0;
        foreach (var pair in pairs)
        {
            int[] chosen = [.. pair.ChosenIds[..pair.ChosenLength], 1], rejected = [.. pair.RejectedIds[..pair.RejectedLength], 1];
            double rw = beta * (HandLogProb(policy, pair.PromptIds, chosen) - HandLogProb(reference, pair.PromptIds, chosen));
            double rl = beta * (HandLogProb(policy, pair.PromptIds, rejected) - HandLogProb(reference, pair.PromptIds, rejected));
            loss += -LogSigmoid(rw - rl) / pairs.Count;
            accuracy += (rw > rl ? 1.0 : 0.0) / pairs.Count;
        }
        Assert.Equal(loss, step.Loss.to(ScalarType.Float64).item<double>(), 5);
        Assert.Equal(accuracy, step.Metrics["rewards/accuracies"], 12);
    }

    [Fact]
    public void GradientMatchesFiniteDifferencesInFloat64()
    {
        var reference = DpoTestData.Policy(seed: 8);
        var policy = DpoTestData.Policy(seed: 9);
        reference.to(ScalarType.Float64);
        policy.to(ScalarType.Float64);
        var pairs = DpoTestData.EchoPairs(3, seed: 4);
        var trainer = new DpoTrainer(policy, pairs, null, new DpoTrainingOptions { Beta = 0.7 }, reference);
        int[] batch = [0, 1, 2];
        Tensor Loss() => trainer.Forward(batch).Loss;

        policy.zero_grad();
        var loss = Loss();
        Assert.Equal(ScalarType.Float64, loss.dtype);
        loss.backward();
        var rng = new Random(1);
        const double h = 1e-6;
        foreach (var (name, p) in policy.named_parameters())
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
                    using (no_grad()) { flat[index] = value; return Loss().item<double>(); }
                }
                double numeric = (At(original + h) - At(original - h)) / (2 * h);
                using (no_grad()) flat[index] = original;
                double analytic = grad[index].item<double>();
                Assert.True(Math.Abs(numeric - analytic) <= 1e-6 + 1e-4 * Math.Abs(analytic),
                    $"{name}[{index}]: finite difference {numeric}, autograd {analytic}");
            }
        }
    }
}
