using Pargs.Rewards;

namespace Pargs.Training;

/// <summary>How FaRMA's two losses share the optimizer steps.</summary>
public enum FarmaSchedule
{
    /// <summary>The paper's: micro-batches alternate between Bradley–Terry (even) and the max constraint (odd).</summary>
    Alternate,
    /// <summary>Both losses every micro-batch: BT + λ·max.</summary>
    Sum,
}

/// <summary>Options of <see cref="VocabularyRewardTrainer"/> (FaRMA and GenARM reward models).</summary>
public sealed record VocabularyRewardTrainingOptions
{
    /// <summary>Farma or Genarm.</summary>
    public RewardObjective Objective { get; init; } = RewardObjective.Farma;
    public TrainingOptions Loop { get; init; } = new();
    /// <summary>Pairs whose prompt + response is longer are an error (null = the model's max_position_embeddings).</summary>
    public int? MaxLength { get; init; }
    public int EvalBatchSize { get; init; } = 16;
    /// <summary>GenARM's β in −log σ(β(Σ log π_r(y_w) − Σ log π_r(y_l))) (their code: 0.05).</summary>
    public double Beta { get; init; } = GenArmLoss.DefaultBeta;
    /// <summary>FaRMA: how the two losses share steps.</summary>
    public FarmaSchedule FarmaSchedule { get; init; } = FarmaSchedule.Alternate;
    /// <summary>FaRMA: λ, the max constraint's weight (in both schedules).</summary>
    public double MaxConstraintWeight { get; init; } = 1.0;
    /// <summary>FaRMA: treat max_v RM(x, y1..t)[v] as a constant target (see <see cref="FarmaLoss"/> for why).</summary>
    public bool DetachMaxTarget { get; init; } = true;

    public VocabularyRewardTrainingOptions Validate()
    {
        if (!Objective.HasVocabularyHead()) throw new PargsException($"--objective {Objective.ToConfigValue()} trains a scalar reward model, not a vocabulary-head one");
        if (!(Beta > 0) || !double.IsFinite(Beta)) throw new PargsException($"--beta must be a positive number, got {Beta}");
        if (!(MaxConstraintWeight >= 0) || !double.IsFinite(MaxConstraintWeight)) throw new PargsException($"--max-constraint-weight must be a non-negative number, got {MaxConstraintWeight}");
        if (EvalBatchSize <= 0) throw new PargsException($"eval batch size must be at least 1, got {EvalBatchSize}");
        return this;
    }
}
