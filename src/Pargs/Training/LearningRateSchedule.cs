namespace Pargs.Training;

/// <summary>
/// The learning rate at optimizer step s (0-based), as Hugging Face's get_*_schedule_with_warmup computes it:
/// linear warm-up from 0 over the warm-up steps, then constant, linear decay to 0, or half-cosine decay to 0
/// at the last step.
/// </summary>
public static class LearningRateSchedule
{
    public static double At(int step, int totalSteps, double peak, int warmupSteps, Schedule schedule)
    {
        if (step < warmupSteps) return peak * step / Math.Max(1, warmupSteps);
        if (schedule == Schedule.Constant) return peak;
        double progress = (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
        return schedule switch
        {
            Schedule.Linear => peak * Math.Max(0.0, 1.0 - progress),
            Schedule.Cosine => peak * Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * progress))),
            _ => throw new ArgumentOutOfRangeException(nameof(schedule)),
        };
    }

    public static Schedule Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "constant" => Schedule.Constant,
        "linear" => Schedule.Linear,
        "cosine" => Schedule.Cosine,
        _ => throw new PargsException($"schedule \"{text}\" is not known (expected constant, linear or cosine)"),
    };
}
