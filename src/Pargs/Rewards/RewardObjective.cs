namespace Pargs.Rewards;

/// <summary>
/// What a reward model was trained to score. <see cref="Full"/>: whole responses only (TRL's RewardTrainer,
/// the ARGS guide). <see cref="Partial"/>: every prefix of a response (the PARGS reward model), so its score of
/// a half-written response is meaningful. <see cref="Farma"/> and <see cref="Genarm"/> are reward models with a
/// head over the whole vocabulary (a causal LM used as a reward model, <see cref="VocabularyRewardModel"/>):
/// FaRMA's r(x, y&lt;t ∘ v) for every v, GenARM's autoregressive log π_r(v | x, y&lt;t).
/// </summary>
public enum RewardObjective { Full, Partial, Farma, Genarm }

public static class RewardObjectives
{
    /// <summary>The value written to config.json as <c>pargs_objective</c>.</summary>
    public static string ToConfigValue(this RewardObjective objective) => objective switch
    {
        RewardObjective.Full => "full",
        RewardObjective.Partial => "partial",
        RewardObjective.Farma => "farma",
        _ => "genarm",
    };

    /// <summary>Whether a reward model of this objective has a vocabulary-sized head (a causal LM), not a scalar one.</summary>
    public static bool HasVocabularyHead(this RewardObjective objective) => objective is RewardObjective.Farma or RewardObjective.Genarm;

    public static RewardObjective Parse(string text, string source) => text.Trim().ToLowerInvariant() switch
    {
        "full" => RewardObjective.Full,
        "partial" => RewardObjective.Partial,
        "farma" => RewardObjective.Farma,
        "genarm" => RewardObjective.Genarm,
        _ => throw new PargsException($"{source}: objective \"{text}\" is not known (expected full, partial, farma or genarm)"),
    };
}
