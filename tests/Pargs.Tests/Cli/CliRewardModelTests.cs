using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Cli.Commands;
using Pargs.Training;

namespace Pargs.Tests.Cli;

/// <summary>train-rm → eval-rm end to end on stories260K, and train-rm --resume after an interrupted run.</summary>
public class CliRewardModelTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string PairsFile()
    {
        string[] good = [" The dog was happy and played in the sun.", " Lily smiled and hugged her mom.", " They had fun at the park all day."];
        string[] bad = [" The dog was sad.", " Lily cried.", " It was bad."];
        string path = _dir.File("pairs.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 8).Select(i => new JsonObject
        {
            ["prompt"] = "Once upon a time", ["chosen"] = good[i % 3], ["rejected"] = bad[i % 3],
        }.ToJsonString()));
        return path;
    }

    string[] TrainArgs(string data, string outDir, int steps, params string[] extra) =>
    [
        "train-rm", "--model", PargsCli.Stories260KGguf, "--data", data, "--out", outDir, "--max-steps", steps.ToString(),
        "--batch-size", "4", "--log-every", "1", "--schedule", "constant", "--threads", "1", .. extra,
    ];

    [Fact]
    public void Train_rm_then_eval_rm_writes_json_and_prefix_accuracy_plots()
    {
        string data = PairsFile();
        string full = _dir.File("rm-full"), partial = _dir.File("rm-partial");
        PargsCli.Succeeds(TrainArgs(data, full, 2, "--objective", "full"));
        PargsCli.Succeeds(TrainArgs(data, partial, 2, "--objective", "partial"));
        Assert.True(File.Exists(Path.Combine(partial, HuggingFaceFolder.WeightsFile)));

        string outDir = _dir.File("eval");
        var run = PargsCli.Succeeds("eval-rm", "--reward-model", full, "--reward-model", partial,
            "--data", data, "--out", outDir, "--threads", "1");
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, EvalRmCommand.OutputFile)))!;
        var models = json["reward_models"]!.AsArray();
        Assert.Equal(["full", "partial"], models.Select(m => (string?)m!["objective"]));
        Assert.All(models, m => Assert.Equal(8, (int)m!["pairs"]!));
        foreach (var plot in new[] { EvalRmCommand.PrefixLengthPlot, EvalRmCommand.PrefixFractionPlot })
            foreach (var ext in new[] { ".png", ".svg" })
            {
                string file = Path.Combine(outDir, plot + ext);
                Assert.True(File.Exists(file) && new FileInfo(file).Length > 1000, $"{file} missing or empty\n{run}");
            }
        var png = File.ReadAllBytes(Path.Combine(outDir, EvalRmCommand.PrefixLengthPlot + ".png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        string svg = File.ReadAllText(Path.Combine(outDir, EvalRmCommand.PrefixLengthPlot + ".svg"));
        Assert.Contains("<svg", svg);
        Assert.Contains("rm-full (full)", svg);       // one legend entry per reward model, side by side
        Assert.Contains("rm-partial (partial)", svg);
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp*"));
    }

    [Fact]
    public void Resume_after_an_interruption_continues_to_the_same_model_without_duplicate_metrics()
    {
        string data = PairsFile();
        string outDir = _dir.File("rm");
        string[] args = TrainArgs(data, outDir, 6, "--checkpoint-every", "2");
        PargsCli.Succeeds(args);
        string weights = Path.Combine(outDir, HuggingFaceFolder.WeightsFile);
        var straight = Safetensors.Load(weights);
        var straightMetrics = MetricsJsonl.Read(Path.Combine(outDir, TrainingLoop.MetricsFile));
        Assert.Equal(Enumerable.Range(1, 6), straightMetrics.Select(m => (int)m["step"]));

        // Simulate a crash after step 6 was logged but before its checkpoint and the final model were written.
        Directory.Delete(Path.Combine(outDir, TrainingCheckpoints.Prefix + "6"), recursive: true);
        foreach (var file in new[] { HuggingFaceFolder.WeightsFile, HuggingFaceFolder.ConfigFile, HuggingFaceFolder.TokenizerFile })
            File.Delete(Path.Combine(outDir, file));

        var resumed = PargsCli.Succeeds([.. args, "--resume"]);
        Assert.Contains($"resumed from {Path.Combine(outDir, TrainingCheckpoints.Prefix + "4")}", resumed.StdoutFlat);
        var metrics = MetricsJsonl.Read(Path.Combine(outDir, TrainingLoop.MetricsFile));
        Assert.Equal(Enumerable.Range(1, 6), metrics.Select(m => (int)m["step"])); // no duplicated step 5 or 6
        Assert.Equal(straightMetrics.Select(m => m["loss"]), metrics.Select(m => m["loss"]));
        Assert.True(Directory.Exists(Path.Combine(outDir, TrainingCheckpoints.Prefix + "6")));

        var continued = Safetensors.Load(weights);
        Assert.Equal(straight.Keys.Order(), continued.Keys.Order());
        foreach (var (name, t) in straight)
            Assert.True(t.shape.SequenceEqual(continued[name].shape) && t.eq(continued[name]).all().item<bool>(), $"{name} differs after resuming");
    }
}
