using Pargs.Data;
using Pargs.Rewards;
using Pargs.Tests.Rewards;
using Pargs.Training;
using Xunit;
using Xunit.Abstractions;

namespace Pargs.Tests.Training;

public class PartialVsFullTests(ITestOutputHelper output)
{
    const int Marker = 3, Length = 10;

    /// <summary>
    /// Chosen: the marker at response position 0 or 1, then filler. Rejected: filler with two markers LATE
    /// (positions 5-6 and 7-9). At the end both contain markers, so a full-sequence RM learns something like "fewer /
    /// earlier markers win" from position L only; on a short prefix only the chosen side has a marker yet — a
    /// situation the full RM never saw, so its ranking there is arbitrary. The partial RM is trained on exactly
    /// those short prefixes. (With no marker in the rejected response the full RM's "marker present" rule happens
    /// to transfer to short prefixes, which would hide the difference.)
    /// </summary>
    static List<TokenizedPair> MarkerPairs(int count, int seed, bool lateMarker)
    {
        var rng = new Random(seed);
        int[] Filler(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(Marker + 1, 16)).ToArray();
        return Enumerable.Range(0, count).Select(_ =>
        {
            var chosen = Filler(Length);
            chosen[rng.Next(2)] = Marker;
            var rejected = Filler(Length);
            if (lateMarker) { rejected[rng.Next(5, 7)] = Marker; rejected[rng.Next(7, Length)] = Marker; }
            return RewardTestData.Pair([1], chosen, rejected);
        }).ToList();
    }

    (double Short, double Full) TrainAndMeasure(RewardObjective objective, bool lateMarker, int steps, double lr, int seed = 0)
    {
        var model = RewardModel.Create(RewardTestData.TinyLlama(), seed: 7 + seed);
        var train = MarkerPairs(256, seed: 11 + 100 * seed, lateMarker);
        var test = MarkerPairs(128, seed: 12, lateMarker);
        var options = new RewardTrainingOptions
        {
            Objective = objective,
            Loop = new TrainingOptions { LearningRate = lr, BatchSize = 16, MaxSteps = steps, Seed = 5 + seed, WarmupSteps = 10, Threads = 1 },
        };
        new RewardTrainer(model, train, null, options).Train();
        double shortAccuracy = RewardEvaluator.PrefixAccuracy(model, test, _ => [2, 3, 4]);
        double fullAccuracy = RewardEvaluator.Evaluate(model, test).Accuracy;
        output.WriteLine($"{objective} late={lateMarker}: short {shortAccuracy:F3} full {fullAccuracy:F3}");
        return (shortAccuracy, fullAccuracy);
    }

    [Fact]
    public void PartialRewardModelRanksShortPrefixesThatAFullOneCannot()
    {
        var partial = TrainAndMeasure(RewardObjective.Partial, lateMarker: true, steps: 100, lr: 3e-3);
        var full = TrainAndMeasure(RewardObjective.Full, lateMarker: true, steps: 100, lr: 3e-3);
        // Both learned the whole-response preference…
        Assert.True(partial.Full >= 0.9, $"partial RM whole-response accuracy {partial.Full}");
        Assert.True(full.Full >= 0.9, $"full RM whole-response accuracy {full.Full}");
        // …but only the partial RM ranks prefixes of 2..4 tokens (seeds 1..4 gave the full RM 0.01–0.62 here).
        Assert.True(partial.Short >= 0.9, $"partial RM short-prefix accuracy {partial.Short}");
        Assert.True(full.Short <= 0.7, $"full RM short-prefix accuracy {full.Short}");
        Assert.True(partial.Short - full.Short >= 0.25);
    }
}
