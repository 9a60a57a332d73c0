using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;

namespace Pargs.Training;

/// <summary>What a checkpoint records besides weights and optimizer moments.</summary>
public sealed record TrainerState(int Step, int Seed, int BatchSize, int GradientAccumulation, IReadOnlyList<IReadOnlyDictionary<string, double>> LogHistory);

/// <summary>
/// The <c>checkpoint-&lt;step&gt;</c> folders of a run: the model (as the task saves it), <c>optimizer.bin</c>
/// (AdamW's step counts and moments, TorchSharp's optimizer state format) and <c>trainer_state.json</c>. Each is
/// written into <c>checkpoint-tmp</c> and renamed when complete, so a kill mid-save leaves the previous
/// checkpoints intact; only the newest <c>keep</c> are kept.
/// </summary>
public sealed class TrainingCheckpoints(string outputDir, int keep)
{
    public const string Prefix = "checkpoint-";
    public const string OptimizerFile = "optimizer.bin";
    public const string StateFile = "trainer_state.json";
    string TempDir => Path.Combine(outputDir, Prefix + "tmp");

    /// <summary>Complete checkpoints, oldest first.</summary>
    public IReadOnlyList<(int Step, string Path)> List()
    {
        if (!Directory.Exists(outputDir)) return [];
        return Directory.GetDirectories(outputDir, Prefix + "*")
            .Select(path => (Ok: int.TryParse(Path.GetFileName(path)[Prefix.Length..], out int step), Step: step, Path: path))
            .Where(c => c.Ok && File.Exists(Path.Combine(c.Path, StateFile)))
            .OrderBy(c => c.Step)
            .Select(c => (c.Step, c.Path))
            .ToList();
    }

    public string? Latest() => List() is { Count: > 0 } all ? all[^1].Path : null;

    public void Save(int step, ITrainingTask task, TorchSharp.Modules.AdamW optimizer, TrainerState state)
    {
        if (Directory.Exists(TempDir)) Directory.Delete(TempDir, recursive: true);
        task.SaveModel(TempDir);
        Directory.CreateDirectory(TempDir);
        optimizer.save_state_dict(Path.Combine(TempDir, OptimizerFile));
        File.WriteAllText(Path.Combine(TempDir, StateFile), StateJson(state).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        string final = Path.Combine(outputDir, Prefix + step);
        if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
        Directory.Move(TempDir, final);
        var all = List();
        foreach (var (_, path) in all.Take(Math.Max(0, all.Count - keep)))
            Directory.Delete(path, recursive: true);
    }

    /// <summary>Loads the model and optimizer from <paramref name="dir"/>; returns the recorded state.</summary>
    public TrainerState Restore(string dir, ITrainingTask task, TorchSharp.Modules.AdamW optimizer)
    {
        task.LoadModel(dir);
        string optimizerPath = Path.Combine(dir, OptimizerFile);
        if (!File.Exists(optimizerPath)) throw new PargsException($"{optimizerPath}: missing (the checkpoint is incomplete)");
        try { optimizer.load_state_dict(optimizerPath); }
        catch (Exception e) when (e is IOException) // truncated or corrupt file
        {
            throw new PargsException($"{optimizerPath}: cannot be read ({e.Message}); the checkpoint is damaged — resume from an earlier one or start again", e);
        }
        catch (ArgumentException e)
        {
            // TorchSharp checks only that the saved state fits this optimizer's parameters.
            throw new PargsException($"{optimizerPath}: the optimizer state does not fit the parameters being trained ({e.Message.TrimEnd('.')}); " +
                                     "resume with the settings the checkpoint was written with (e.g. the same --lora-rank and --lora-targets)", e);
        }
        return ReadState(Path.Combine(dir, StateFile));
    }

    static JsonObject StateJson(TrainerState state) => new()
    {
        ["global_step"] = state.Step,
        ["seed"] = state.Seed,
        ["batch_size"] = state.BatchSize,
        ["gradient_accumulation_steps"] = state.GradientAccumulation,
        ["log_history"] = new JsonArray(state.LogHistory.Select(r => JsonNode.Parse(MetricsJsonl.ToLine(r))).ToArray()),
    };

    static TrainerState ReadState(string path)
    {
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            int Int(string name) => json[name]?.GetValue<int>() ?? throw new PargsException($"{path}: missing field \"{name}\"");
            var history = (json["log_history"] as JsonArray ?? [])
                .Select(node => (IReadOnlyDictionary<string, double>)node!.AsObject()
                    .ToDictionary(kv => kv.Key, kv => kv.Value is null ? double.NaN : kv.Value.GetValue<double>()))
                .ToList();
            return new TrainerState(Int("global_step"), Int("seed"), Int("batch_size"), Int("gradient_accumulation_steps"), history);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new PargsException($"{path}: not a valid trainer state ({e.Message})");
        }
    }
}
