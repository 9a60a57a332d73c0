using Pargs.Models;
using Pargs.Training;

namespace Pargs.Tests.Cli;

/// <summary>`pargs train-ppo` run as a user runs it: stories260K against the shipped reward model, a few updates.</summary>
public class CliTrainPpoTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string Prompts()
    {
        string path = _dir.File("prompts.txt");
        File.WriteAllText(path, "# story openings\nOnce upon a time\nThe little dog\nLily went to the park\n");
        return path;
    }

    [Fact]
    public void Trains_saves_a_loadable_policy_and_resumes()
    {
        string prompts = Prompts(), output = _dir.File("ppo");
        string[] Args(int steps) => ["train-ppo", "-m", PargsCli.Stories260KGguf, "--rm", TestPaths.ShippedPartialRm, "-p", prompts, "-o", output,
            "--max-steps", steps.ToString(), "--batch-size", "4", "--response-length", "12", "--ppo-epochs", "2", "--lr", "1e-4",
            "--checkpoint-every", "2", "--threads", "1"];
        var run = PargsCli.Succeeds(Args(2));
        Assert.Contains("saved the PPO policy", run.StdoutFlat);
        var metrics = MetricsJsonl.Read(Path.Combine(output, TrainingLoop.MetricsFile));
        Assert.Equal(2, metrics.Count);
        Assert.All(metrics, m => Assert.True(m.ContainsKey("objective/kl") && m.ContainsKey("objective/scores") && m.ContainsKey("policy/approxkl_avg")));
        using (var policy = CausalLM.Load(Path.Combine(output, "model")))
            Assert.Equal(512, policy.Config.VocabSize);

        var resumed = PargsCli.Succeeds(Args(3).Append("--resume").ToArray());
        Assert.Contains("resumed from", resumed.StdoutFlat);
        Assert.Equal(3, MetricsJsonl.Read(Path.Combine(output, TrainingLoop.MetricsFile)).Count);
    }

    [Fact]
    public void Bad_settings_are_one_line_errors_naming_the_option()
    {
        string prompts = Prompts();
        string[] Args(params string[] more) => ["train-ppo", "-m", PargsCli.Stories260KGguf, "--rm", TestPaths.ShippedPartialRm, "-p", prompts,
            "-o", _dir.File("bad"), "--threads", "1", .. more];
        PargsCli.Fails(Args("--kl-estimator", "k2"), "--kl-estimator", "k2");
        PargsCli.Fails(Args("--batch-size", "3", "--mini-batches", "2"), "mini-batches");
        PargsCli.Fails(Args("--response-length", "600"), prompts, "positions");
    }
}
