using Pargs.Rewards;
using Pargs.Tests.Models;
using Pargs.Tests.Rewards;
using Pargs.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Pargs.Tests.Training;

public class TrainingLoopTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "pargs-train-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    static RewardTrainingOptions Options(string? output, int steps, int? checkpointEvery = null, bool resume = false) => new()
    {
        Objective = RewardObjective.Partial,
        CenterRewardsCoefficient = 0.01,
        Loop = new TrainingOptions
        {
            LearningRate = 2e-3, BatchSize = 3, GradientAccumulation = 2, MaxSteps = steps, WarmupSteps = 2,
            Schedule = Schedule.Cosine, WeightDecay = 0.01, MaxGradNorm = 0.5, Seed = 17, LogEvery = 2, EvalEvery = 3,
            CheckpointEvery = checkpointEvery, OutputDir = output, Resume = resume, Threads = 1,
        },
    };

    sealed class StopAt(int step, CancellationTokenSource kill) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) { if (value.Step == step) kill.Cancel(); }
    }

    /// <summary>Trains; with <paramref name="killAfter"/>, the run dies (cancellation) right after that step.</summary>
    static Dictionary<string, Tensor> Train(string? output, int steps, int? checkpointEvery = null, int? killAfter = null)
    {
        var model = RewardModel.Create(RewardTestData.TinyLlama(), seed: 21);
        // Create's default initialisation draws from torch's global generator, which test classes running in
        // parallel also draw from (any module they construct); the runs compared here need the same start.
        TinyModels.Randomize(model, seed: 21);
        var train = RewardTestData.RandomPairs(14, vocab: 16, seed: 5, margins: true);
        var eval = RewardTestData.RandomPairs(4, vocab: 16, seed: 6);
        using var kill = new CancellationTokenSource();
        var trainer = new RewardTrainer(model, train, eval, Options(output, steps, checkpointEvery));
        if (killAfter is { } k)
            Assert.Throws<OperationCanceledException>(() => trainer.Train(new StopAt(k, kill), kill.Token));
        else
            trainer.Train();
        return model.StateDictForSaving();
    }

    [Fact]
    public void ResumingFromAMidwayCheckpointReachesTheSameWeightsAsAnUninterruptedRun()
    {
        const int steps = 8; // 16 micro-batches of 3 over 14 pairs: crosses epoch boundaries
        var uninterrupted = Train(Path.Combine(dir, "a"), steps, checkpointEvery: steps / 2);

        // The killed run: it dies after step 5, one step past its checkpoint at step 4 …
        string run = Path.Combine(dir, "b");
        Train(run, steps, checkpointEvery: steps / 2, killAfter: steps / 2 + 1);
        Assert.False(Directory.Exists(Path.Combine(run, "checkpoint-8")));
        Assert.True(Directory.Exists(Path.Combine(run, "checkpoint-4")));
        // … and a fresh process (new model from a different init, new optimizer) resumes from it.
        var resumedModel = RewardModel.Create(RewardTestData.TinyLlama(), seed: 999);
        var train = RewardTestData.RandomPairs(14, vocab: 16, seed: 5, margins: true);
        var eval = RewardTestData.RandomPairs(4, vocab: 16, seed: 6);
        var result = new RewardTrainer(resumedModel, train, eval, Options(run, steps, steps / 2, resume: true)).Train();
        Assert.EndsWith("checkpoint-4", result.ResumedFrom);
        Assert.Equal(steps, result.Steps);

        foreach (var (name, expected) in uninterrupted)
        {
            double diff = (resumedModel.StateDictForSaving()[name] - expected).abs().max().item<float>();
            Assert.True(diff <= 1e-6, $"{name} differs by {diff}");
        }
        // The metrics log of the resumed run equals the uninterrupted one, line for line (losses included).
        var a = File.ReadAllLines(Path.Combine(dir, "a", TrainingLoop.MetricsFile));
        var b = File.ReadAllLines(Path.Combine(run, TrainingLoop.MetricsFile));
        Assert.Equal(a, b);
        Assert.Contains("\"eval_accuracy_by_prefix/1\"", a[^1]);
        Assert.Contains("\"loss\"", a[0]);
        Assert.Contains("\"learning_rate\"", a[0]);
        // Checkpoints are complete reward-model folders.
        var checkpoint = RewardModel.Load(Path.Combine(run, "checkpoint-8"), requireTokenizer: false);
        Assert.Equal(RewardObjective.Partial, checkpoint.Objective);
    }

    [Fact]
    public void KeepsOnlyTheLastTwoCheckpointsAndNoTemporaryFolder()
    {
        Train(dir, steps: 6, checkpointEvery: 2);
        var names = Directory.GetDirectories(dir).Select(Path.GetFileName).OrderBy(n => n).ToArray();
        Assert.Equal(new[] { "checkpoint-4", "checkpoint-6" }, names);
        var lines = MetricsJsonl.Read(Path.Combine(dir, TrainingLoop.MetricsFile));
        Assert.Equal(new double[] { 2, 3, 4, 6, 6 }, lines.Select(l => l["step"]).ToArray());
        Assert.All(lines.Where(l => !l.ContainsKey("eval_loss")), l => Assert.InRange(l["accuracy"], 0, 1));
    }

    [Fact]
    public void TrainingLowersTheLoss()
    {
        var model = RewardModel.Create(RewardTestData.TinyLlama(), seed: 2);
        var pairs = RewardTestData.RandomPairs(12, vocab: 16, seed: 8);
        double Loss() { using var _ = no_grad(); return RewardTrainer.Loss(model, pairs, RewardObjective.Partial).Loss.item<float>(); }
        double before = Loss();
        var options = Options(null, 30) with { Loop = Options(null, 30).Loop with { EvalEvery = null, Schedule = Schedule.Constant } };
        new RewardTrainer(model, pairs, null, options).Train();
        Assert.True(Loss() < before * 0.7, $"loss {before} → {Loss()}");
    }

    [Fact]
    public void ScheduleFollowsHuggingFaceWithWarmup()
    {
        // get_*_schedule_with_warmup: lr = peak·s/warmup during warm-up (0 at step 0), then decay over the rest.
        double At(int step, Schedule schedule) => LearningRateSchedule.At(step, totalSteps: 10, peak: 2.0, warmupSteps: 4, schedule);
        Assert.Equal(0.0, At(0, Schedule.Linear), 12);
        Assert.Equal(1.0, At(2, Schedule.Cosine), 12);
        Assert.Equal(2.0, At(4, Schedule.Linear), 12);
        Assert.Equal(2.0 * 3 / 6, At(7, Schedule.Linear), 12);
        Assert.Equal(1.0, At(7, Schedule.Cosine), 12);
        Assert.Equal(2.0, At(9, Schedule.Constant), 12);
        Assert.Equal(2.0, LearningRateSchedule.At(0, 10, 2.0, 0, Schedule.Linear), 12);
    }

    [Fact]
    public void LengthBatchesCoverEveryExampleOnceAndAreSeeded()
    {
        var lengths = Enumerable.Range(0, 23).Select(i => (i * 7) % 11 + 1).ToArray();
        var a = LengthBatches.ForEpoch(lengths, 4, seed: 3, epoch: 0);
        Assert.Equal(Enumerable.Range(0, 23), a.SelectMany(b => b).OrderBy(i => i));
        Assert.Equal(6, a.Count);
        Assert.Equal(a.Select(b => string.Join(",", b)), LengthBatches.ForEpoch(lengths, 4, 3, 0).Select(b => string.Join(",", b)));
        Assert.NotEqual(a.Select(b => string.Join(",", b)), LengthBatches.ForEpoch(lengths, 4, 3, 1).Select(b => string.Join(",", b)));
        // Bucketing: the spread of lengths inside a batch is much smaller than across the data.
        Assert.True(a.Average(b => b.Max(i => lengths[i]) - b.Min(i => lengths[i])) <= 3);
    }
}
