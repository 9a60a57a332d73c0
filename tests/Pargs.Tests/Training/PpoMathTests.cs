using Pargs.Training;
using Xunit;
using static TorchSharp.torch;

namespace Pargs.Tests.Training;

/// <summary>PPO's rollout arithmetic and clipped losses against values worked out by hand (written out below).</summary>
public class PpoMathTests
{
    static Tensor T(double[,] values) => tensor(values);
    static Tensor Mask(bool[,] values) => tensor(values);
    static double[] Row(Tensor t, int row) => t[row].to(ScalarType.Float64).data<double>().ToArray();

    static void Near(double[] expected, double[] actual, double tolerance = 1e-12)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"[{i}]: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void GaeMatchesAHandComputedExample()
    {
        // Row 0: three tokens, score 1 on the last. Row 1: two tokens (the third position is padding, whose numbers
        // must not leak in: they are set to garbage here).
        var rewards = T(new double[,] { { 0, 0, 1 }, { 0, 2, 9 } });
        var values = T(new double[,] { { 0.5, 0.6, 0.7 }, { 1, 0.5, 9 } });
        var mask = Mask(new bool[,] { { true, true, true }, { true, true, false } });

        // γ = 1, λ = 0.95. Row 0: δ2 = 1 − 0.7 = 0.3 → A2 = 0.3; δ1 = 0.7 − 0.6 = 0.1 → A1 = 0.1 + 0.95·0.3 = 0.385;
        // δ0 = 0.6 − 0.5 = 0.1 → A0 = 0.1 + 0.95·0.385 = 0.46575. Returns = A + V.
        // Row 1: δ1 = 2 + 0 − 0.5 = 1.5 → A1 = 1.5; δ0 = 0 + 0.5 − 1 = −0.5 → A0 = −0.5 + 0.95·1.5 = 0.925.
        var (advantages, returns) = PpoAdvantages.Gae(rewards, values, mask, gamma: 1.0, lambda: 0.95);
        Near([0.46575, 0.385, 0.3], Row(advantages, 0));
        Near([0.96575, 0.985, 1.0], Row(returns, 0));
        Near([0.925, 1.5, 0], Row(advantages, 1));
        Near([1.925, 2.0, 0], Row(returns, 1));

        // γ = 0.9, λ = 0.8 (γλ = 0.72). Row 0: δ2 = 0.3 → A2 = 0.3; δ1 = 0.9·0.7 − 0.6 = 0.03 → A1 = 0.03 + 0.72·0.3 = 0.246;
        // δ0 = 0.9·0.6 − 0.5 = 0.04 → A0 = 0.04 + 0.72·0.246 = 0.21712.
        (advantages, _) = PpoAdvantages.Gae(rewards, values, mask, gamma: 0.9, lambda: 0.8);
        Near([0.21712, 0.246, 0.3], Row(advantages, 0));
    }

    [Fact]
    public void RewardsAreTheKlPenaltyPlusTheScoreOnTheLastToken()
    {
        var kl = T(new double[,] { { 0.1, -0.2, 0.3 }, { 0.4, 0.5, 0 } });
        var rewards = PpoAdvantages.Rewards(kl, tensor(new[] { 1.0, -2.0 }), [3, 2], klCoef: 0.05);
        Near([-0.005, 0.01, -0.015 + 1], Row(rewards, 0));
        Near([-0.02, -0.025 - 2, 0], Row(rewards, 1));
    }

    [Fact]
    public void KlEstimatorsAreSchulmansK1AndK3AndZeroAtPadding()
    {
        var logp = T(new double[,] { { Math.Log(0.5), Math.Log(0.2), Math.Log(0.9) } });
        var refLogp = T(new double[,] { { Math.Log(0.25), Math.Log(0.4), Math.Log(0.1) } });
        var mask = Mask(new bool[,] { { true, true, false } });
        // k1 = log π − log π_ref: ln 2, ln 0.5, (padding) 0.
        Near([Math.Log(2), Math.Log(0.5), 0], Row(PpoAdvantages.Kl(logp, refLogp, mask, PpoKlEstimator.K1), 0), 1e-12);
        // k3 = (r − 1) − ln r with r = π_ref / π: r = 0.5 → −0.5 + ln 2; r = 2 → 1 − ln 2.
        Near([-0.5 + Math.Log(2), 1 - Math.Log(2), 0], Row(PpoAdvantages.Kl(logp, refLogp, mask, PpoKlEstimator.K3), 0), 1e-12);
    }

    [Fact]
    public void WhiteningUsesTheMaskedMeanAndUnbiasedVariance()
    {
        // Masked values 1, 2, 3: mean 2, unbiased variance (1 + 0 + 1) / 2 = 1 → −1, 0, 1; padding stays 0.
        var values = T(new double[,] { { 1, 2, 50 }, { 3, 70, 80 } });
        var mask = Mask(new bool[,] { { true, true, false }, { true, false, false } });
        var whitened = PpoAdvantages.Whiten(values, mask);
        Near([-1, 0, 0], Row(whitened, 0), 1e-7);
        Near([1, 0, 0], Row(whitened, 1), 1e-7);
        // Without shifting the mean, the mean is added back: 1, 2, 3.
        Near([1, 2, 0], Row(PpoAdvantages.Whiten(values, mask, shiftMean: false), 0), 1e-7);
        Assert.Throws<PargsException>(() => PpoAdvantages.Whiten(values, Mask(new bool[,] { { true, false, false }, { false, false, false } })));
    }

    [Fact]
    public void ClippedPolicyAndValueLossesMatchHandComputedValues()
    {
        // Three real tokens and one padded position (garbage there must not count).
        var mask = Mask(new bool[,] { { true, true, true, false } });
        var old = T(new double[,] { { 0, 0, 0, 0 } });
        var logp = T(new double[,] { { Math.Log(1.5), Math.Log(0.5), Math.Log(1.1), 5 } });
        var advantages = T(new double[,] { { 1, -1, 2, 100 } });
        var oldValues = T(new double[,] { { 0, 1, 0.5, 0 } });
        var values = T(new double[,] { { 0.5, 0.9, 0.4, 30 } });
        var returns = T(new double[,] { { 1, 0, 0.5, -30 } });

        var result = PpoLoss.Compute(logp, old, advantages, values, oldValues, returns, mask, clipRange: 0.2, clipRangeValue: 0.2, valueCoef: 0.1);
        // Policy: ratio 1.5, A = 1: max(−1.5, −1.2) = −1.2 (clipped); ratio 0.5, A = −1: max(0.5, 0.8) = 0.8 (clipped);
        // ratio 1.1, A = 2: max(−2.2, −2.2) = −2.2. Mean = −2.6 / 3; clip fraction 2/3.
        Assert.Equal(-2.6 / 3, result.PolicyLoss.item<double>(), 12);
        Assert.Equal(2.0 / 3, result.Metrics["policy/clipfrac_avg"], 12);
        // Value: V = 0.5 from 0 clipped to 0.2: max((0.5 − 1)², (0.2 − 1)²) = 0.64 (clipped); 0.9 within [0.8, 1.2]: 0.81;
        // 0.4 within [0.3, 0.7]: (0.4 − 0.5)² = 0.01. Half the mean: 0.5 · 1.46 / 3; clip fraction 1/3.
        Assert.Equal(0.5 * 1.46 / 3, result.ValueLoss.item<double>(), 12);
        Assert.Equal(1.0 / 3, result.Metrics["val/clipfrac_avg"], 12);
        Assert.Equal(-2.6 / 3 + 0.1 * 0.5 * 1.46 / 3, result.Loss.item<double>(), 12);
        // approxkl = ½·mean(log-ratio²); val/ratio = mean ratio over the real tokens.
        double l1 = Math.Log(1.5), l2 = Math.Log(0.5), l3 = Math.Log(1.1);
        Assert.Equal(0.5 * (l1 * l1 + l2 * l2 + l3 * l3) / 3, result.Metrics["policy/approxkl_avg"], 12);
        Assert.Equal((1.5 + 0.5 + 1.1) / 3, result.Metrics["val/ratio"], 12);
    }
}
