namespace Pargs.Training;

/// <summary>Where training is, after each optimizer step (what the CLI's progress bar shows).</summary>
public sealed record TrainingProgress(int Step, int TotalSteps, double Loss, double? Accuracy, TimeSpan? Eta);
