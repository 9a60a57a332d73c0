using System.Diagnostics;

namespace Pargs.Experiments;

/// <summary>
/// Runs the cached stages of a pipeline (the demo, `pargs experiment`): each stage writes into its own folder of the
/// work folder and finishes with a <see cref="StageManifest"/>; a stage whose manifest matches its fingerprint is
/// skipped. A stage body gets its (fresh, empty) folder and returns the files it wrote and a few summary numbers.
/// The run's summary files (report.md) are deleted as soon as a stage has to run again: until the run rewrites them
/// they would describe the old results, and if the stage fails they never would be rewritten.
/// </summary>
public sealed class StageRunner(string workDir, IProgress<DemoProgress>? progress, params string[] summaryFiles)
{
    public string WorkDir => workDir;
    public IProgress<DemoProgress>? Progress => progress;
    public string Dir(string stage) => Path.Combine(workDir, stage);

    /// <summary>Progress for one stage (null when nobody listens).</summary>
    public IProgress<(int Done, int Total, string Message)>? For(string stage) => progress is null ? null
        : new InlineProgress<(int Done, int Total, string Message)>(p => progress.Report(new DemoProgress(stage, p.Done, p.Total, p.Message)));

    public DemoStageResult Run(string name, string fingerprint,
        Func<string, (IReadOnlyList<string> Files, Dictionary<string, double> Summary)> body)
    {
        string dir = Dir(name);
        if (StageManifest.ReadIfComplete(dir, fingerprint) is { } cached)
        {
            progress?.Report(new DemoProgress(name, 1, 1, "cached"));
            return new DemoStageResult(name, true, cached.Seconds, dir, cached.Summary);
        }
        foreach (var file in summaryFiles)
            if (File.Exists(Path.Combine(workDir, file))) File.Delete(Path.Combine(workDir, file));
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // outputs of other inputs, or an interrupted run
        Directory.CreateDirectory(dir);
        progress?.Report(new DemoProgress(name, 0, 1, "starting"));
        var clock = Stopwatch.StartNew();
        var (files, summary) = body(dir);
        var manifest = new StageManifest
        {
            Stage = name, Fingerprint = fingerprint, Files = files, Seconds = Math.Round(clock.Elapsed.TotalSeconds, 2),
            FinishedUtc = DateTime.UtcNow, Summary = summary,
        };
        manifest.Write(dir);
        progress?.Report(new DemoProgress(name, 1, 1, $"done in {manifest.Seconds:0.0} s"));
        return new DemoStageResult(name, false, manifest.Seconds, dir, summary);
    }

    /// <summary>Deletes the given stage folders and files of the work folder (only those: it may hold other files).</summary>
    public void Delete(IEnumerable<string> stages, params string[] files)
    {
        foreach (var stage in stages)
            if (Directory.Exists(Dir(stage))) Directory.Delete(Dir(stage), recursive: true);
        foreach (var file in files)
            if (File.Exists(Path.Combine(workDir, file))) File.Delete(Path.Combine(workDir, file));
    }
}
