using Pargs.Checkpoints;
using Pargs.Data;
using Pargs.Models;
using Pargs.Tests.Models;
using Pargs.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Pargs.Tests.Dpo;

public class DpoTrainerTests(ITestOutputHelper output) : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "pargs-dpo-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    static IReadOnlyDictionary<string, double> HeldOut(DpoTrainer trainer)
    {
        using var _ = no_grad();
        return trainer.Evaluate()!;
    }

    [Fact]
    public void DpoRaisesTheImplicitRewardMarginOnHeldOutPairs()
    {
        var policy = DpoTestData.Policy(seed: 11);
        var train = DpoTestData.EchoPairs(192, seed: 1);
        var heldOut = DpoTestData.EchoPairs(64, seed: 2);
        var options = new DpoTrainingOptions
        {
            Beta = 0.1,
            Loop = new TrainingOptions { LearningRate = 3e-3, BatchSize = 16, MaxSteps = 60, WarmupSteps = 5, Seed = 3, Threads = 1 },
        };
        var trainer = new DpoTrainer(policy, train, heldOut, options);
        var before = HeldOut(trainer);
        Assert.True(Math.Abs(before["rewards/margins"]) < 1e-4, $"at init policy = reference, margin {before["rewards/margins"]}");
        Assert.Equal(Math.Log(2), before["loss"], 4);

        var result = trainer.Train();
        var after = HeldOut(trainer);
        output.WriteLine($"held-out: margin {after["rewards/margins"]:F3} accuracy {after["rewards/accuracies"]:F3} loss {after["loss"]:F3}");
        Assert.True(after["rewards/margins"] > 1.0, $"held-out margin {after["rewards/margins"]}");
        Assert.True(after["rewards/accuracies"] >= 0.9, $"held-out accuracy {after["rewards/accuracies"]}");
        Assert.True(after["loss"] < 0.4, $"held-out loss {after["loss"]}");
        Assert.True(after["logps/chosen"] > before["logps/chosen"], "the chosen responses became more likely");
        foreach (var name in new[] { "loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected" })
            Assert.True(result.LogHistory[^1].ContainsKey(name), $"metrics line has {name}");
    }

    static DpoTrainingOptions ResumeOptions(string output, int steps, bool resume = false) => new()
    {
        Beta = 0.2,
        Loop = new TrainingOptions
        {
            LearningRate = 2e-3, BatchSize = 3, GradientAccumulation = 2, MaxSteps = steps, WarmupSteps = 1, Schedule = Schedule.Cosine,
            WeightDecay = 0.01, MaxGradNorm = 0.5, Seed = 17, LogEvery = 2, EvalEvery = 3, CheckpointEvery = 3,
            OutputDir = output, Resume = resume, Threads = 1,
        },
    };

    static DpoTrainer Trainer(string output, int steps, bool resume = false)
        => new(DpoTestData.Policy(seed: 21), DpoTestData.EchoPairs(13, seed: 5), DpoTestData.EchoPairs(4, seed: 6), ResumeOptions(output, steps, resume));

    [Fact]
    public void ResumingFromACheckpointGivesTheSameWeightsAsAnUninterruptedRun()
    {
        var a = Trainer(Path.Combine(dir, "a"), 6);
        a.Train();
        // The "killed" run is cancelled right after its checkpoint at step 3 (same 6-step schedule); a fresh process
        // rebuilds the trainer from the BASE model (the reference) and resumes.
        string run = Path.Combine(dir, "b");
        using var kill = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            Trainer(run, 6).Train(new Synchronous(p => { if (p.Step == 3) kill.Cancel(); }), kill.Token));
        Assert.False(Directory.Exists(Path.Combine(run, "checkpoint-6")));
        var b = Trainer(run, 6, resume: true);
        var result = b.Train();
        Assert.EndsWith("checkpoint-3", result.ResumedFrom);

        var expected = a.Policy.StateDictForSaving();
        foreach (var (name, value) in b.Policy.StateDictForSaving())
        {
            double diff = (value - expected[name]).abs().max().item<float>();
            Assert.True(diff <= 1e-6, $"{name} differs by {diff}");
        }
        Assert.Equal(File.ReadAllLines(Path.Combine(dir, "a", TrainingLoop.MetricsFile)).Length,
                     File.ReadAllLines(Path.Combine(run, TrainingLoop.MetricsFile)).Length);
        Assert.Contains("\"eval_rewards/margins\"", File.ReadAllText(Path.Combine(run, TrainingLoop.MetricsFile)));
        // A checkpoint is a complete causal-LM folder.
        using var contents = HuggingFaceFolder.Load(Path.Combine(run, "checkpoint-6"));
        var reloaded = CausalLM.FromCheckpoint(contents);
        Assert.Equal(0.0, (reloaded.StateDictForSaving()["lm_head.weight"] - expected["lm_head.weight"]).abs().max().item<float>());
    }

    sealed class Synchronous(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Fact]
    public void SavedPolicyLoadsBackWithTheSameLogits()
    {
        var policy = DpoTestData.Policy(seed: 31);
        var trainer = new DpoTrainer(policy, DpoTestData.EchoPairs(8, seed: 7), null,
            new DpoTrainingOptions { Loop = new TrainingOptions { LearningRate = 1e-2, BatchSize = 4, MaxSteps = 2, Threads = 1 } });
        trainer.Train();
        string saved = Path.Combine(dir, "policy");
        trainer.SavePolicy(saved);
        using var contents = HuggingFaceFolder.Load(saved);
        var reloaded = CausalLM.FromCheckpoint(contents);
        var ids = tensor(new long[] { 1, 5, 6, 7, 2 }, [1, 5]);
        using var _ = no_grad();
        Assert.Equal(0.0, (reloaded.Logits(ids) - policy.Logits(ids)).abs().max().item<float>());
        Assert.Equal("LlamaForCausalLM", reloaded.Architecture);
    }

    [Fact]
    public void RealCheckpointTrainedAndSavedLoadsBackWithCausalLMLoad()
    {
        var policy = CausalLM.Load(TestPaths.Stories260KGguf);
        var tokenizer = policy.Tokenizer!;
        int[] Ids(string text, bool bos = false) => tokenizer.Encode(text, bos);
        var pairs = new List<TokenizedPair>
        {
            DpoTestData.Pair(Ids("Once upon a time", bos: true), Ids(" there was a cat."), Ids(" the end")),
            DpoTestData.Pair(Ids("The dog", bos: true), Ids(" ran home."), Ids(" zzz qqq")),
        };
        var trainer = new DpoTrainer(policy, pairs, null,
            new DpoTrainingOptions { Loop = new TrainingOptions { LearningRate = 1e-3, BatchSize = 2, MaxSteps = 2, Threads = 1 } });
        trainer.Train();
        string saved = Path.Combine(dir, "stories-dpo");
        trainer.SavePolicy(saved);
        var reloaded = CausalLM.Load(saved);
        var ids = tensor(Ids("Once upon a time there", bos: true).Select(i => (long)i).ToArray()).unsqueeze(0);
        using var _ = no_grad();
        Assert.Equal(0.0, (reloaded.Logits(ids) - policy.Logits(ids)).abs().max().item<float>());
        Assert.Equal(Ids("a cat"), reloaded.Tokenizer!.Encode("a cat"));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.5)]
    public void NonPositiveBetaIsAnError(double beta)
    {
        var e = Assert.Throws<PargsException>(() => new DpoTrainer(DpoTestData.Policy(), DpoTestData.EchoPairs(2, seed: 1), null, new DpoTrainingOptions { Beta = beta }));
        Assert.Contains("--beta must be positive", e.Message);
    }

    [Fact]
    public void BadPairsAndMismatchedTokenizersAreClearErrors()
    {
        var options = new DpoTrainingOptions();
        var empty = new TokenizedPair([1, 4], [2, 2], [5, 2], [1, 2], null, 0, 1, SourceLine: 7);
        var e = Assert.Throws<PargsException>(() => new DpoTrainer(DpoTestData.Policy(), [empty], null, options));
        Assert.Contains("line 7", e.Message);
        Assert.Contains("empty response", e.Message);

        var outside = DpoTestData.Pair([1, 4], [5, 40], [6]);
        e = Assert.Throws<PargsException>(() => new DpoTrainer(DpoTestData.Policy(), [outside], null, options));
        Assert.Contains("token id 40", e.Message);
        Assert.Contains("vocabulary of size 16", e.Message);

        var noPrompt = DpoTestData.Pair([], [5], [6]);
        e = Assert.Throws<PargsException>(() => new DpoTrainer(DpoTestData.Policy(), [noPrompt], null, options));
        Assert.Contains("prompt has no tokens", e.Message);

        var policy = DpoTestData.Policy();
        policy.Tokenizer = new TestCharTokenizer(30);
        e = Assert.Throws<PargsException>(() => new DpoTrainer(policy, DpoTestData.EchoPairs(2, seed: 1), null, options));
        Assert.Contains("the tokenizer has 30 tokens but the model's vocab_size is 16", e.Message);

        e = Assert.Throws<PargsException>(() => new DpoTrainer(DpoTestData.Policy(), DpoTestData.EchoPairs(2, seed: 1), null, options, reference: DpoTestData.Policy(vocab: 20)));
        Assert.Contains("same vocabulary", e.Message);
    }
}
