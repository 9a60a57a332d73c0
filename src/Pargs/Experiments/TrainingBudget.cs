using Pargs.Training;

namespace Pargs.Experiments;

/// <summary>
/// The optimisation budget shared by every model a pipeline trains (full RM, partial RM, DPO policy): the same
/// epochs (or steps), batch, learning rate and seed, so the rows of a comparison differ only in their objective.
/// </summary>
public sealed record TrainingBudget(int Epochs, int? MaxSteps, int BatchSize, double LearningRate, int Seed, int? Threads)
{
    public TrainingOptions ToLoop(string outputDir) => new TrainingOptions
    {
        LearningRate = LearningRate, BatchSize = BatchSize, Epochs = Epochs, MaxSteps = MaxSteps,
        Seed = Seed, Threads = Threads, OutputDir = outputDir, LogEvery = 5,
    }.Validate();

    public string Describe(System.IFormatProvider? format = null) =>
        (MaxSteps is { } steps ? $"{steps} steps" : $"{Epochs} epochs") + $", batch {BatchSize}, lr {LearningRate.ToString("0.#####", format ?? System.Globalization.CultureInfo.InvariantCulture)}";
}
