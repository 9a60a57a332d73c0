namespace Pargs.Training;

/// <summary>
/// Options of <see cref="DpoTrainer"/>. β is DPO's KL-strength (TRL's default 0.1): small β lets the policy drift
/// far from the reference, large β keeps it close. The optimisation itself is <see cref="Loop"/>.
/// </summary>
public sealed record DpoTrainingOptions
{
    public double Beta { get; init; } = 0.1;
    public TrainingOptions Loop { get; init; } = new();
    /// <summary>
    /// Score one EOS after each real response (TRL appends EOS too): the policy also learns where a preferred
    /// answer ends. The EOS id is the model config's <c>eos_token_id</c>.
    /// </summary>
    public bool AppendEos { get; init; } = true;
    /// <summary>Sequences (prompt + response [+ EOS]) longer than this are an error (null = max_position_embeddings).</summary>
    public int? MaxLength { get; init; }
    public int EvalBatchSize { get; init; } = 16;
    /// <summary>Train low-rank adapters instead of every weight (null = full fine-tuning); merged on save.</summary>
    public LoraOptions? Lora { get; init; }

    public DpoTrainingOptions Validate()
    {
        if (!(Beta > 0) || double.IsInfinity(Beta)) throw new PargsException($"--beta must be positive (got {Beta})");
        if (EvalBatchSize <= 0) throw new PargsException($"DPO eval batch size must be positive (got {EvalBatchSize})");
        if (MaxLength is <= 1) throw new PargsException($"--max-length must be at least 2 (got {MaxLength})");
        Lora?.Validate();
        Loop.Validate();
        return this;
    }
}
