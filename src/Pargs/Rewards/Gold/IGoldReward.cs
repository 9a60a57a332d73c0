namespace Pargs.Rewards.Gold;

/// <summary>
/// A reward that judges generations but never guides them: the evaluator of the "gold reward model"
/// protocol. Independent of every learned reward model, so a method cannot win by fooling its own guide.
/// </summary>
public interface IGoldReward
{
    /// <summary>Short identifier written into reports, e.g. <c>vader-positive</c>.</summary>
    string Name { get; }

    /// <summary>Higher is better. <paramref name="prompt"/> is available to rewards that need context.</summary>
    double Score(string prompt, string continuation);
}
