using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Tests.Dpo;
using Pargs.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Pargs.Tests.Training;

public class PpoTrainerTests(ITestOutputHelper output) : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "pargs-ppo-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    /// <summary>A lexicon reward over tokens: the share of response tokens that are "positive" words (ids 7 and 8).</summary>
    sealed class LexiconScorer : IPpoScorer
    {
        public double[] Score(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses)
            => responses.Select(r => r.Count(t => t is 7 or 8) / (double)r.Length).ToArray();
    }

    static List<int[]> Prompts(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (int[])[1, .. Enumerable.Range(0, rng.Next(1, 4)).Select(_ => rng.Next(3, 16))]).ToList();
    }

    static PpoTrainingOptions Options(int updates, string? output = null, bool resume = false, double klCoef = 0.05) => new()
    {
        KlCoef = klCoef, ResponseLength = 6, Temperature = 1.0, StopAtEos = true,
        Loop = new TrainingOptions
        {
            LearningRate = 1e-2, BatchSize = 8, GradientAccumulation = 2, MaxSteps = updates, Seed = 5, Threads = 1, LogEvery = 1,
            MaxGradNorm = null, OutputDir = output, Resume = resume, CheckpointEvery = output is null ? null : 3,
        },
    };

    [Fact]
    public void KlToTheReferenceIsZeroWhenThePolicyIsTheReference()
    {
        // No explicit reference: the trainer freezes a copy of the policy as it is, so the first rollout's policy and
        // reference log-probabilities are the same numbers.
        var trainer = new PpoTrainer(DpoTestData.Policy(seed: 4), new LexiconScorer(), Prompts(16, 1), Options(1));
        using var scope = NewDisposeScope();
        var rollout = trainer.Rollout(0);
        Assert.Equal(0.0, rollout.Kl.abs().max().item<float>());
        Assert.Equal(0.0, rollout.NonScoreRewards.abs().max().item<float>());
        Assert.True(rollout.LogProbs.abs().max().item<float>() > 0, "the log-probabilities are real numbers, not zeros");
        // Rewards are then exactly the scores, on each response's last token.
        var expected = rollout.Scores.to(ScalarType.Float64).data<double>().ToArray();
        var sums = rollout.Rewards.sum(1).to(ScalarType.Float64).data<double>().ToArray();
        for (int b = 0; b < expected.Length; b++) Assert.Equal(expected[b], sums[b], 6);
    }

    [Fact]
    public void ARowsResponseDependsOnlyOnTheSeedTheUpdateAndTheRow()
    {
        var policy = DpoTestData.Policy(seed: 4);
        var prompts = Prompts(5, 2);
        Random[] Streams() => Enumerable.Range(0, prompts.Count).Select(j => Pargs.Decoding.DecodingSteps.RowRandom(9, 3, j)).ToArray();
        var together = PpoSampler.Sample(policy, prompts, 8, 0.7, [2], Streams());
        var streams = Streams();
        for (int b = 0; b < prompts.Count; b++)
            Assert.Equal(together[b], PpoSampler.Sample(policy, [prompts[b]], 8, 0.7, [2], [streams[b]])[0]);
        Assert.All(together, r => Assert.True(r.Length == 8 || r[^1] == 2, "a response ends at EOS or at the length limit"));
        Assert.Contains(together, r => r.Length == 8 && !r.Contains(2));
    }

    [Fact]
    public void PpoLossGradientMatchesFiniteDifferencesOnATinyModelInFloat64()
    {
        var policy = DpoTestData.Policy(seed: 6);
        var trainer = new PpoTrainer(policy, new LexiconScorer(), Prompts(8, 3),
            Options(1) with { Loop = Options(1).Loop with { BatchSize = 4, GradientAccumulation = 2 } });
        using var scope = NewDisposeScope();
        var rollout = trainer.Rollout(0);
        // The rollout is sampled as always (float32, the cached engine); the loss is then differentiated in float64.
        trainer.Model.to(ScalarType.Float64);
        // Move the policy and value head away from the rollout's, so ratios and values leave the clip ranges.
        var noise = new Generator(7);
        using var one = 1.ToScalar(); // add_'s alpha, held: see Pargs.Models.HeldScalars
        using (no_grad())
            foreach (var p in trainer.Model.parameters())
                p.add_(randn(p.shape, dtype: p.dtype, generator: noise).Times(0.5), one);
        int[] rows = [0, 3, 5, 6];
        Tensor Loss() => trainer.Loss(rollout, rows).Loss;

        trainer.Model.zero_grad();
        var first = trainer.Loss(rollout, rows);
        Assert.Equal(ScalarType.Float64, first.Loss.dtype);
        output.WriteLine($"policy clipfrac {first.Metrics["policy/clipfrac_avg"]:F3}, value clipfrac {first.Metrics["val/clipfrac_avg"]:F3}");
        Assert.True(first.Metrics["policy/clipfrac_avg"] > 0 && first.Metrics["policy/clipfrac_avg"] < 1, "some ratios are clipped, some not");
        first.Loss.backward();
        var rng = new Random(1);
        const double h = 1e-6;
        int checkedCount = 0;
        foreach (var (name, p) in trainer.Model.named_parameters())
        {
            if (!(name.Contains("embed") || name.Contains("q_proj") || name.Contains("down_proj") || name.Contains("lm_head") || name.Contains("v_head"))) continue;
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
                Assert.True(Math.Abs(numeric - analytic) <= 1e-6 + 1e-4 * Math.Abs(analytic), $"{name}[{index}]: finite difference {numeric}, autograd {analytic}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount >= 12, $"{checkedCount} entries checked");
    }

    [Fact]
    public void TheScoreGoesUpOnALearnableLexiconReward()
    {
        var trainer = new PpoTrainer(DpoTestData.Policy(seed: 12), new LexiconScorer(), Prompts(32, 4), Options(12) with { StopAtEos = false });
        var result = trainer.Train();
        double Score(int i) => result.LogHistory[i]["objective/scores"];
        int n = result.LogHistory.Count;
        double early = (Score(0) + Score(1)) / 2, late = (Score(n - 1) + Score(n - 2)) / 2;
        output.WriteLine(string.Join("\n", result.LogHistory.Select(r => $"{r["step"]}: scores {r["objective/scores"]:F3} kl {r["objective/kl"]:F3} approxkl {r["policy/approxkl_avg"]:F4} clipfrac {r["policy/clipfrac_avg"]:F3}")));
        Assert.Equal(12, result.Steps);
        Assert.True(early < 0.3, $"the untrained policy says a positive word in {early:P0} of its tokens");
        Assert.True(late > early + 0.3, $"score {early:F3} → {late:F3}");
        Assert.True(result.LogHistory[^1]["objective/kl"] > 0, "the policy moved away from the reference");
        foreach (var name in new[] { "objective/kl", "objective/entropy", "objective/non_score_reward", "objective/rlhf_reward", "objective/scores",
                     "policy/approxkl_avg", "policy/clipfrac_avg", "policy/entropy_avg", "loss/policy_avg", "loss/value_avg", "val/clipfrac_avg",
                     "val/ratio", "val/ratio_var", "val/num_eos_tokens", "episode", "learning_rate", "loss" })
            Assert.True(result.LogHistory[^1].ContainsKey(name), $"the metrics line has {name}");
    }

    PpoTrainer Resumable(string run, int updates, bool resume = false, double klCoef = 0.05)
        => new(DpoTestData.Policy(seed: 21), new LexiconScorer(), Prompts(13, 6), Options(updates, run, resume, klCoef) with
        {
            MiniBatches = 2, PpoEpochs = 2,
            Loop = Options(updates, run, resume).Loop with { WarmupSteps = 1, Schedule = Schedule.Cosine, WeightDecay = 0.01, MaxGradNorm = 0.5, LogEvery = 1 },
        });

    [Fact]
    public void ResumingFromACheckpointGivesTheSameWeightsAsAnUninterruptedRun()
    {
        var a = Resumable(Path.Combine(dir, "a"), 6);
        a.Train();
        // The "killed" run is cancelled right after its checkpoint at update 3; a fresh process rebuilds the trainer
        // from the BASE model and resumes.
        string run = Path.Combine(dir, "b");
        using var kill = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            Resumable(run, 6).Train(new Synchronous(p => { if (p.Step == 3) kill.Cancel(); }), kill.Token));
        Assert.False(Directory.Exists(Path.Combine(run, "checkpoint-6")));
        var b = Resumable(run, 6, resume: true);
        var result = b.Train();
        Assert.EndsWith("checkpoint-3", result.ResumedFrom);

        var expected = a.Policy.StateDictForSaving();
        foreach (var (name, value) in b.Policy.StateDictForSaving())
            Assert.True((value - expected[name]).abs().max().item<float>() == 0, $"{name} differs");
        var expectedHead = a.Model.ValueHeadState();
        foreach (var (name, value) in b.Model.ValueHeadState())
            Assert.True((value - expectedHead[name]).abs().max().item<float>() == 0, $"{name} differs");
        Assert.Equal(File.ReadAllLines(Path.Combine(dir, "a", TrainingLoop.MetricsFile)),
                     File.ReadAllLines(Path.Combine(run, TrainingLoop.MetricsFile)));
        // A checkpoint is a complete causal-LM folder plus the value head.
        using var contents = HuggingFaceFolder.Load(Path.Combine(run, "checkpoint-6"));
        Assert.Equal(0.0, (CausalLM.FromCheckpoint(contents).StateDictForSaving()["lm_head.weight"] - expected["lm_head.weight"]).abs().max().item<float>());
        Assert.True(File.Exists(Path.Combine(run, "checkpoint-6", PpoTrainer.ValueHeadFile)));
    }

    [Fact]
    public void ResumingWithOtherPpoSettingsIsRefusedNamingTheSetting()
    {
        string run = Path.Combine(dir, "c");
        Resumable(run, 3).Train();
        var e = Assert.Throws<PargsException>(() => Resumable(run, 6, resume: true, klCoef: 0.2).Train());
        Assert.Contains("kl_coef", e.Message);
        Assert.Contains(PpoTrainer.ConfigFile, e.Message);
    }

    [Fact]
    public void OptionsThatCannotBeHonouredAreRefused()
    {
        var loop = new TrainingOptions { BatchSize = 4, GradientAccumulation = 3 };
        Assert.Contains("mini-batches", Assert.Throws<PargsException>(() => new PpoTrainingOptions { MiniBatches = 2, Loop = loop }.Validate()).Message);
        Assert.Contains("evaluation", Assert.Throws<PargsException>(() => new PpoTrainingOptions { Loop = loop with { EvalEvery = 5 } }.Validate()).Message);
        Assert.Contains("positions", Assert.Throws<PargsException>(() =>
            new PpoTrainer(DpoTestData.Policy(), new LexiconScorer(), [[1, 3]], new PpoTrainingOptions { ResponseLength = 63 })).Message);
    }

    [Fact]
    public void TheGoldScorerJudgesTheDecodedResponse()
    {
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        var tokenizer = lm.Tokenizer!;
        var gold = Pargs.Rewards.Gold.LexiconSentiment.Positive(Pargs.Rewards.Gold.VaderLexicon.LoadDefault());
        int[] prompt = tokenizer.Encode("Once upon a time", addBos: true);
        string[] responses = [" she was very happy and loved her friends.", " he was sad and angry."];
        var scores = new GoldPpoScorer(gold, tokenizer).Score([prompt, prompt], responses.Select(r => tokenizer.Encode(r)).ToList());
        for (int i = 0; i < responses.Length; i++)
            Assert.Equal(gold.Score(tokenizer.Decode(prompt), tokenizer.Decode(tokenizer.Encode(responses[i]))), scores[i]);
        Assert.True(scores[0] > 0.5 && scores[1] < 0, $"scores {scores[0]}, {scores[1]}");
    }

    sealed class Synchronous(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
