using Pargs.Checkpoints;
using Pargs.Models;
using Pargs.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Pargs.Tests.Dpo;

public class LoraTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "pargs-lora-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    static readonly Tensor Ids = tensor(new long[] { 1, 5, 6, 7, 2, 9, 4 }, [1, 7]);

    static Tensor Logits(CausalLM model)
    {
        using var _ = no_grad();
        return model.Logits(Ids).detach().clone();
    }

    [Fact]
    public void RankFourAdaptersAtInitGiveExactlyTheBaseLogits()
    {
        var policy = DpoTestData.Policy(seed: 41);
        var before = Logits(policy);
        var lora = new LoraAdapters(policy, new LoraOptions { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj", "down_proj"], Seed = 3 });
        lora.Sync();
        Assert.Equal(6, lora.AdaptedWeights.Count); // 2 layers × 3 targets
        Assert.Equal(12, lora.parameters().Count());
        Assert.Equal(0.0, (Logits(policy) - before).abs().max().item<float>());
        // Only the adapters are trainable; the base is frozen.
        Assert.All(lora.parameters(), p => Assert.True(p.requires_grad));
        Assert.Contains(lora.named_parameters(), p => p.name == "model_layers_0_self_attn_q_proj_weight_lora_A");
    }

    [Fact]
    public void AdapterGradientsMatchFiniteDifferencesInFloat64()
    {
        var reference = DpoTestData.Policy(seed: 8);
        var policy = DpoTestData.Policy(seed: 9);
        reference.to(ScalarType.Float64);
        policy.to(ScalarType.Float64);
        var options = new DpoTrainingOptions { Beta = 0.5, Lora = new LoraOptions { Rank = 2, Alpha = 3, TargetModules = ["q_proj", "up_proj"] } };
        var trainer = new DpoTrainer(policy, DpoTestData.EchoPairs(3, seed: 4), null, options, reference);
        var parameters = trainer.Model.named_parameters().ToList();
        using (no_grad())
            foreach (var (name, p) in parameters.Where(p => p.name.EndsWith("lora_B")))
                p.copy_(randn(p.shape, dtype: p.dtype, generator: new Generator(7)).Times(0.3));
        int[] batch = [0, 1, 2];
        trainer.Model.zero_grad();
        var loss = trainer.Forward(batch).Loss;
        loss.backward();
        var rng = new Random(2);
        const double h = 1e-6;
        foreach (var (name, p) in parameters)
        {
            var flat = p.detach().view(-1);
            var grad = p.grad!.view(-1);
            Assert.True(grad.abs().max().item<double>() > 0, $"{name} got no gradient");
            for (int trial = 0; trial < 3; trial++)
            {
                long index = rng.NextInt64(flat.shape[0]);
                double original = flat[index].item<double>();
                double At(double value)
                {
                    using (no_grad()) flat[index] = value;
                    using (no_grad()) return trainer.Forward(batch).Loss.item<double>();
                }
                double numeric = (At(original + h) - At(original - h)) / (2 * h);
                using (no_grad()) flat[index] = original;
                double analytic = grad[index].item<double>();
                Assert.True(Math.Abs(numeric - analytic) <= 1e-6 + 1e-4 * Math.Abs(analytic), $"{name}[{index}]: finite difference {numeric}, autograd {analytic}");
            }
        }
    }

    [Fact]
    public void TrainingChangesOnlyTargetedWeightsAndMergeOnSaveReproducesTheAdaptedLogits()
    {
        var policy = DpoTestData.Policy(seed: 43);
        var baseWeights = policy.StateDictForSaving();
        var options = new DpoTrainingOptions
        {
            Lora = new LoraOptions { Rank = 2, Alpha = 4, TargetModules = ["q_proj", "v_proj"] },
            Loop = new TrainingOptions { LearningRate = 1e-2, BatchSize = 4, MaxSteps = 5, Threads = 1 },
        };
        var trainer = new DpoTrainer(policy, DpoTestData.EchoPairs(16, seed: 9), null, options);
        trainer.Train();
        var adapted = Logits(policy);
        foreach (var (name, value) in policy.StateDictForSaving())
        {
            double diff = (value - baseWeights[name]).abs().max().item<float>();
            bool targeted = name.EndsWith("q_proj.weight") || name.EndsWith("v_proj.weight");
            Assert.True(targeted ? diff > 0 : diff == 0, $"{name} changed by {diff}");
        }
        string saved = Path.Combine(dir, "merged");
        trainer.SavePolicy(saved);
        using var contents = HuggingFaceFolder.Load(saved);
        var reloaded = CausalLM.FromCheckpoint(contents);
        Assert.Equal(0.0, (Logits(reloaded) - adapted).abs().max().item<float>());
        Assert.True((adapted - Logits(DpoTestData.Policy(seed: 43))).abs().max().item<float>() > 1e-4, "training moved the logits");
    }

    static DpoTrainer ResumableTrainer(string output, bool resume = false) => new(DpoTestData.Policy(seed: 51), DpoTestData.EchoPairs(10, seed: 5), null,
        new DpoTrainingOptions
        {
            Lora = new LoraOptions { Rank = 2, Alpha = 4, TargetModules = ["q_proj", "down_proj"], Seed = 1 },
            Loop = new TrainingOptions { LearningRate = 5e-3, BatchSize = 3, MaxSteps = 6, CheckpointEvery = 3, OutputDir = output, Resume = resume, Seed = 2, Threads = 1 },
        });

    sealed class Synchronous(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Fact]
    public void LoraRunResumesToTheSameMergedWeights()
    {
        var a = ResumableTrainer(Path.Combine(dir, "a"));
        a.Train();
        string run = Path.Combine(dir, "b");
        using var kill = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            ResumableTrainer(run).Train(new Synchronous(p => { if (p.Step == 3) kill.Cancel(); }), kill.Token));
        var b = ResumableTrainer(run, resume: true);
        Assert.EndsWith("checkpoint-3", b.Train().ResumedFrom);
        var expected = a.Policy.StateDictForSaving();
        foreach (var (name, value) in b.Policy.StateDictForSaving())
        {
            double diff = (value - expected[name]).abs().max().item<float>();
            Assert.True(diff <= 1e-6, $"{name} differs by {diff}");
        }
    }

    [Fact]
    public void BadLoraOptionsAreClearErrors()
    {
        var e = Assert.Throws<PargsException>(() => new LoraAdapters(DpoTestData.Policy(), new LoraOptions { Rank = 0 }));
        Assert.Contains("--lora-rank must be positive", e.Message);
        e = Assert.Throws<PargsException>(() => new LoraAdapters(DpoTestData.Policy(), new LoraOptions { TargetModules = ["c_attn"] }));
        Assert.Contains("no 2-D weight of a module named c_attn", e.Message);
    }
}
