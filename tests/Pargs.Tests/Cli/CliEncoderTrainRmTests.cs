using System.Diagnostics;
using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Cli.Commands;
using Pargs.Rewards;
using Pargs.Tests.Models.Encoders;
using Pargs.Training;

namespace Pargs.Tests.Cli;

/// <summary>`pargs train-rm --model ENCODER_FOLDER` as a user runs it: train, guide `generate --method pargs`, resume after kill -9.</summary>
public class CliEncoderTrainRmTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string PairsFile()
    {
        string[] good = [" the cat was happy and nice.", " a great story, we love it.", " good dog."];
        string[] bad = [" the dog was sad.", " an awful story.", " bad and sad."];
        string path = _dir.File("pairs.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 8).Select(i => new JsonObject
        {
            ["prompt"] = i % 2 == 0 ? "Once upon a time" : "The story", ["chosen"] = good[i % 3], ["rejected"] = bad[(i + 1) % 3],
        }.ToJsonString()));
        return path;
    }

    static string[] TrainArgs(string model, string data, string outDir, int steps, params string[] extra) =>
    [
        "train-rm", "--model", model, "--data", data, "--out", outDir, "--max-steps", steps.ToString(), "--lr", "1e-3",
        "--batch-size", "4", "--log-every", "1", "--schedule", "constant", "--threads", "1", .. extra,
    ];

    [Fact]
    public void A_trained_encoder_reward_model_guides_pargs_and_records_its_input_and_objective()
    {
        string start = TinyEncoders.Write(_dir.File("deberta-v3"), TinyEncoders.DebertaV3(), seed: 4);
        string data = PairsFile(), outDir = _dir.File("rm");
        var run = PargsCli.Succeeds(TrainArgs(start, data, outDir, 3, "--objective", "partial", "--input", "pair", "--prefix-stride", "2", "--eval-data", data, "--eval-every", "3"));
        string stdout = System.Text.RegularExpressions.Regex.Replace(run.Stdout, @"\s+", " "); // the console wraps long lines
        // Stride 2 compares i = 2, 4, … and L, L being the longer response's length in the DeBERTa tokenizer's tokens.
        var tokenizer = Pargs.Tests.Tokenizers.TokenizerGoldens.Load("deberta");
        double expected = File.ReadAllLines(data).Select(l => JsonNode.Parse(l)!).Average(row =>
        {
            int length = Math.Max(tokenizer.Encode((string)row["chosen"]!, null, false).Ids.Length, tokenizer.Encode((string)row["rejected"]!, null, false).Ids.Length);
            return length / 2 + (length % 2 == 1 ? 1 : 0);
        });
        Assert.True(stdout.Contains($"{expected:F1} compared prefixes per pair"), $"expected {expected:F1}: {stdout}");
        Assert.Contains("eval: accuracy", stdout);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, HuggingFaceFolder.ConfigFile)))!;
        Assert.Equal("pair", (string)config[EncoderInputs.ConfigField]!);
        Assert.Equal("partial", (string)config[RewardModel.ObjectiveField]!);
        var metrics = MetricsJsonl.Read(Path.Combine(outDir, TrainingLoop.MetricsFile));
        Assert.Contains(metrics, m => m.ContainsKey("eval_accuracy_by_prefix/2") && !m.ContainsKey("eval_accuracy_by_prefix/1"));

        using (var rm = (EncoderRewardModel)RewardModelFiles.LoadForDecoding(outDir))
            Assert.Equal((EncoderInput.Pair, 1), (rm.Input, rm.Label.NumLabels));
        var generated = PargsCli.Succeeds("generate", "--method", "pargs", "--rm", outDir, "-k", "3", "-w", "2",
            "--max-new-tokens", "5", "--prompt", "Once upon a time", "--seed", "1", "--threads", "1");
        Assert.StartsWith("Once upon a time", generated.Stdout);
    }

    [Fact]
    public void Options_that_do_not_apply_are_refused()
    {
        string start = TinyEncoders.Write(_dir.File("bert"), TinyEncoders.Bert(), seed: 4);
        string data = PairsFile();
        PargsCli.Fails(TrainArgs(start, data, _dir.File("a"), 1, "--objective", "farma"), "an encoder classifier trains with --objective full or partial");
        PargsCli.Fails(TrainArgs(PargsCli.Stories260KGguf, data, _dir.File("b"), 1, "--prefix-stride", "2"), "--prefix-stride has no effect unless --model is an encoder");
        PargsCli.Fails(TrainArgs(start, data, _dir.File("c"), 1, "--objective", "full", "--prefix-sample", "2"), "--prefix-sample has no effect with --objective full");
        PargsCli.Fails(TrainArgs(start, data, _dir.File("d"), 1, "--input", "both"), "--input \"both\" is not known");
    }

    [Fact]
    public void Resume_after_kill_9_reaches_the_same_weights_as_an_uninterrupted_run()
    {
        string start = TinyEncoders.Write(_dir.File("bert"), TinyEncoders.Bert(), seed: 9);
        string data = PairsFile();
        const int steps = 80; // long enough that the kill lands mid-run on a quiet machine too
        string straight = _dir.File("straight");
        PargsCli.Succeeds(TrainArgs(start, data, straight, steps, "--checkpoint-every", "4", "--input", "pair"));

        // The same run, killed (SIGKILL: no cleanup, possibly mid-checkpoint) once its second checkpoint is on disk. Any
        // complete checkpoint from step 8 on counts: only the newest are kept, so on a quiet machine checkpoint-8 itself
        // could come and go between two looks, and the run then finished before the kill.
        string killed = _dir.File("killed");
        var args = TrainArgs(start, data, killed, steps, "--checkpoint-every", "4", "--input", "pair");
        var startInfo = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        startInfo.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Pargs.Cli.dll"));
        foreach (var a in args) startInfo.ArgumentList.Add(a);
        using (var process = Process.Start(startInfo)!)
        {
            var clock = Stopwatch.StartNew();
            var checkpoints = new TrainingCheckpoints(killed, keep: 1);
            while (!checkpoints.List().Any(c => c.Step >= 8) && !process.HasExited && clock.Elapsed < TimeSpan.FromSeconds(90))
                Thread.Sleep(5);
            Assert.False(process.HasExited, "the run finished before it could be killed (make it longer)");
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        Assert.False(File.Exists(Path.Combine(killed, HuggingFaceFolder.WeightsFile)));
        var resumed = PargsCli.Succeeds([.. args, "--resume"]);
        Assert.Contains("resumed from", resumed.Stdout);

        var a1 = Safetensors.Load(Path.Combine(straight, HuggingFaceFolder.WeightsFile));
        var b1 = Safetensors.Load(Path.Combine(killed, HuggingFaceFolder.WeightsFile));
        Assert.Equal(a1.Keys.Order(), b1.Keys.Order());
        foreach (var (name, expected) in a1)
        {
            double diff = (b1[name] - expected).abs().max().item<float>();
            Assert.True(diff <= 1e-6, $"{name} differs by {diff}");
        }
        Assert.Equal(File.ReadAllLines(Path.Combine(straight, TrainingLoop.MetricsFile)), File.ReadAllLines(Path.Combine(killed, TrainingLoop.MetricsFile)));
    }
}
