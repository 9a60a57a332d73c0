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
        // The small JSON state first: a damaged checkpoint is refused before any weight is replaced.
        var state = ReadState(Path.Combine(dir, StateFile));
        if (int.TryParse(Path.GetFileName(dir).AsSpan(Prefix.Length), out int folderStep) && folderStep != state.Step)
            throw new PargsException($"{Path.Combine(dir, StateFile)}: global_step is {state.Step} but the folder is {Path.GetFileName(dir)}; the checkpoint is damaged");
        task.LoadModel(dir);
        LoadOptimizerState(Path.Combine(dir, OptimizerFile), optimizer);
        return state;
    }

    /// <summary>Loads AdamW's state from <paramref name="optimizerPath"/>; a damaged file is a one-line <see cref="PargsException"/>.</summary>
    public static void LoadOptimizerState(string optimizerPath, TorchSharp.Modules.AdamW optimizer)
    {
        if (!File.Exists(optimizerPath)) throw new PargsException($"{optimizerPath}: missing (the checkpoint is incomplete)");
        // TorchSharp sizes arrays from the file before checking them (a damaged tensor rank asks for gigabytes):
        // the file's structure is checked against this optimizer's own first, so only well-formed state reaches it.
        OptimizerStateLayout.Check(optimizerPath, optimizer);
        try { optimizer.load_state_dict(optimizerPath); }
        catch (ArgumentException e)
        {
            // TorchSharp checks that the saved state fits this optimizer's parameters (a damaged file fails here too).
            throw new PargsException($"{optimizerPath}: the optimizer state does not fit the parameters being trained ({Printable(e.Message)}); " +
                                     "the file is damaged, or was written with other settings (resume with the same --lora-rank and --lora-targets)", e);
        }
        catch (Exception e)
        {
            // Truncated or corrupt: TorchSharp reads it with a BinaryReader, which fails in many ways (end of
            // stream, bad string lengths, invalid enum values) with messages that may quote the file's bytes.
            // It also sizes some arrays from the file before checking them (a damaged tensor rank), so even an
            // OutOfMemoryException here is one failed allocation sized by the file, not an exhausted process.
            throw new PargsException($"{optimizerPath}: cannot be read ({e.GetType().Name}: {Printable(e.Message)}); the checkpoint is damaged — resume from an earlier one or start again", e);
        }
    }

    /// <summary>A message cut to one short line of printable ASCII (a damaged file's bytes must not reach the terminal).</summary>
    static string Printable(string message)
    {
        var text = new string(message.Select(c => c is >= ' ' and <= '~' ? c : '?').Take(160).ToArray()).TrimEnd('.');
        return message.Length > 160 ? text + "..." : text;
    }

    static JsonObject StateJson(TrainerState state) => new()
    {
        ["global_step"] = state.Step,
        ["seed"] = state.Seed,
        ["batch_size"] = state.BatchSize,
        ["gradient_accumulation_steps"] = state.GradientAccumulation,
        ["log_history"] = new JsonArray(state.LogHistory.Select(r => JsonNode.Parse(MetricsJsonl.ToLine(r))).ToArray()),
    };

    /// <summary>Reads a <c>trainer_state.json</c>; every field is type- and range-checked.</summary>
    public static TrainerState ReadState(string path)
    {
        var json = Pargs.Json.CheckedJson.ReadFile(path, Pargs.Json.CheckedJsonLimits.Large);
        var history = new List<IReadOnlyDictionary<string, double>>();
        if (!json["log_history"].IsMissing)
            foreach (var row in json["log_history"].Items())
                // A metric that was NaN is written as null (JSON has no NaN); it reads back as NaN.
                history.Add(row.Fields().ToDictionary(f => f.Name, f => f.Value.IsMissing ? double.NaN : f.Value.Double()));
        return new TrainerState(json["global_step"].Int(0, int.MaxValue), json["seed"].Int(), json["batch_size"].Int(1, int.MaxValue),
            json["gradient_accumulation_steps"].Int(1, int.MaxValue), history);
    }
}
