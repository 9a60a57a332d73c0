namespace Pargs.Experiments;

/// <summary>Where the demo is: <see cref="Done"/> of <see cref="Total"/> units of <see cref="Stage"/> (units are stage-specific).</summary>
public sealed record DemoProgress(string Stage, int Done, int Total, string Message);

/// <summary>How one stage went: run or skipped (cached), its folder, its time (the cached run's time when skipped).</summary>
public sealed record DemoStageResult(string Stage, bool Skipped, double Seconds, string Dir, IReadOnlyDictionary<string, double> Summary);
