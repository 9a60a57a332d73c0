using Pargs.Rewards;

namespace Pargs.Training;

/// <summary>
/// Options of <see cref="RewardTrainer"/>. Which prefix lengths a partial pair contributes, and the maximum
/// sequence length, are chosen when pairs are tokenized (PairTokenizerOptions); here <see cref="MaxLength"/>
/// only guards against pairs longer than the model's context.
/// </summary>
public sealed record RewardTrainingOptions
{
    /// <summary>Partial: every prefix length the pair lists enters the loss. Full: only the whole responses (i = L).</summary>
    public RewardObjective Objective { get; init; } = RewardObjective.Partial;
    public TrainingOptions Loop { get; init; } = new();
    /// <summary>Pairs whose prompt + response is longer are an error (null = the model's max_position_embeddings).</summary>
    public int? MaxLength { get; init; }
    /// <summary>TRL's center_rewards_coefficient: c · mean((r_w + r_l)²) keeps rewards centred on 0.</summary>
    public double CenterRewardsCoefficient { get; init; }
    /// <summary>Subtract each pair's margin inside the sigmoid (TRL) when the data has one.</summary>
    public bool UseMargins { get; init; } = true;
    public int EvalBatchSize { get; init; } = 16;
}
