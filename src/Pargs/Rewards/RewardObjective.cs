namespace Pargs.Rewards;

/// <summary>
/// What a reward model was trained to score. <see cref="Full"/>: whole responses only (TRL's RewardTrainer,
/// the ARGS guide). <see cref="Partial"/>: every prefix of a response (the PARGS reward model), so its score of
/// a half-written response is meaningful.
/// </summary>
public enum RewardObjective { Full, Partial }

public static class RewardObjectives
{
    /// <summary>The value written to config.json as <c>pargs_objective</c>.</summary>
    public static string ToConfigValue(this RewardObjective objective) => objective == RewardObjective.Full ? "full" : "partial";

    public static RewardObjective Parse(string text, string source) => text.Trim().ToLowerInvariant() switch
    {
        "full" => RewardObjective.Full,
        "partial" => RewardObjective.Partial,
        _ => throw new PargsException($"{source}: objective \"{text}\" is not known (expected full or partial)"),
    };
}
