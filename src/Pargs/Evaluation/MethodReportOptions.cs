using Pargs.Rewards.Gold;

namespace Pargs.Evaluation;

/// <summary>What <see cref="MethodReport.Build"/> measures and against what.</summary>
public sealed record MethodReportOptions
{
    /// <summary>Evaluation reward (prompt, continuation) → score. Null: use each record's stored <c>reward</c>.</summary>
    public Func<string, string, double>? Reward { get; init; }
    /// <summary>Method whose per-prompt rewards every row is compared with (win/tie/loss). Null: no comparison.</summary>
    public string? Baseline { get; init; }
    /// <summary>Embedding for <see cref="Coherence"/>. Null: coherence is NaN.</summary>
    public Func<string, float[]>? Embed { get; init; }
    /// <summary>Per-token log p of a continuation given its prompt, for <see cref="Perplexity"/>. Null: NaN.</summary>
    public Func<string, string, IReadOnlyList<double>>? ContinuationLogProbs { get; init; }
    public double TieTolerance { get; init; } = WinRate.DefaultTieTolerance;

    public static MethodReportOptions WithGoldReward(IGoldReward gold, string? baseline = null) =>
        new() { Reward = gold.Score, Baseline = baseline };
}
