namespace Pargs.Training;

/// <summary>Which per-token estimate of KL(policy ‖ reference) the reward is penalised with (TRL's <c>kl_estimator</c>).</summary>
public enum PpoKlEstimator
{
    /// <summary>k1 = log π(y_t) − log π_ref(y_t): unbiased, can be negative for a single token (TRL's default).</summary>
    K1,
    /// <summary>k3 = (r − 1) − log r with r = π_ref/π: unbiased, never negative, lower variance.</summary>
    K3,
}

/// <summary>
/// Options of <see cref="PpoTrainer"/>, named and defaulted as TRL's PPOConfig (trl.experimental.ppo): kl_coef 0.05,
/// γ = 1, λ = 0.95, cliprange 0.2, cliprange_value 0.2, vf_coef 0.1, 4 PPO epochs and 1 mini-batch per rollout batch,
/// sampling temperature 0.7, responses of 53 tokens.
/// The optimisation settings are <see cref="Loop"/>, read as TRL reads its TrainingArguments: the rollout batch of one
/// update is <c>BatchSize × GradientAccumulation</c> prompts (TRL's per_device_train_batch_size ×
/// gradient_accumulation_steps); <c>MaxSteps</c> counts updates (TRL's num_total_batches, its global_step), otherwise
/// <c>Epochs</c> passes over the prompts; the learning rate moves once per update. TRL's PPO loop never clips
/// gradients, so the default here is no clipping (set <c>MaxGradNorm</c> to clip).
/// </summary>
public sealed record PpoTrainingOptions
{
    /// <summary>β of the per-token reward −β·KL (TRL's <c>kl_coef</c>).</summary>
    public double KlCoef { get; init; } = 0.05;
    public PpoKlEstimator KlEstimator { get; init; } = PpoKlEstimator.K1;
    /// <summary>Discount γ of GAE (1: the score at the end counts fully at every token).</summary>
    public double Gamma { get; init; } = 1.0;
    /// <summary>λ of GAE (TRL's <c>lam</c>).</summary>
    public double Lambda { get; init; } = 0.95;
    /// <summary>ε of the clipped policy ratio: the ratio π/π_old counts only within [1 − ε, 1 + ε].</summary>
    public double ClipRange { get; init; } = 0.2;
    /// <summary>How far a new value prediction may move from the rollout's before its loss is clipped.</summary>
    public double ClipRangeValue { get; init; } = 0.2;
    /// <summary>Weight of the value loss in loss = policy loss + vf_coef · value loss.</summary>
    public double ValueCoef { get; init; } = 0.1;
    /// <summary>Passes over each rollout batch (TRL's <c>num_ppo_epochs</c>).</summary>
    public int PpoEpochs { get; init; } = 4;
    /// <summary>Mini-batches each pass is split into, one optimizer step each (TRL's <c>num_mini_batches</c>).</summary>
    public int MiniBatches { get; init; } = 1;
    /// <summary>Most tokens sampled per response (TRL's <c>response_length</c>).</summary>
    public int ResponseLength { get; init; } = 53;
    /// <summary>
    /// Rollouts are drawn from softmax(logits / T) over the whole vocabulary (TRL: top_k 0, top_p 1), and every
    /// log-probability — policy, reference, the PPO ratio — is of that tempered distribution, as in TRL.
    /// </summary>
    public double Temperature { get; init; } = 0.7;
    /// <summary>
    /// End a response at the model's EOS (kept as its last token). TRL's default is no stop token; Pargs stops at EOS
    /// by default because every decoding method does, so the trained policy learns the responses it will be asked for.
    /// </summary>
    public bool StopAtEos { get; init; } = true;
    /// <summary>Subtracted from the score of a response that did not end with EOS (TRL's <c>missing_eos_penalty</c>; null: none).</summary>
    public double? MissingEosPenalty { get; init; }
    /// <summary>Whiten the per-token rewards before GAE (TRL's <c>whiten_rewards</c>).</summary>
    public bool WhitenRewards { get; init; }
    /// <summary>Seed of the value head's initialisation; rollouts and mini-batch order follow <see cref="TrainingOptions.Seed"/>.</summary>
    public int ValueHeadSeed { get; init; } = 0;
    public TrainingOptions Loop { get; init; } = new() { LearningRate = 3e-6, MaxGradNorm = null, LogEvery = 1 };

    /// <summary>Prompts sampled per update: TRL's local batch size.</summary>
    public int RolloutBatch => Loop.BatchSize * Loop.GradientAccumulation;
    /// <summary>Rows per optimizer step.</summary>
    public int MiniBatchSize => RolloutBatch / MiniBatches;

    public PpoTrainingOptions Validate()
    {
        void Require(bool ok, string what) { if (!ok) throw new PargsException($"PPO options: {what}"); }
        Require(KlCoef >= 0 && double.IsFinite(KlCoef), $"--kl-coef must be a non-negative number, got {KlCoef}");
        Require(Gamma is >= 0 and <= 1, $"--gamma must be in [0, 1], got {Gamma}");
        Require(Lambda is >= 0 and <= 1, $"--lam must be in [0, 1], got {Lambda}");
        Require(ClipRange > 0 && ClipRange < 1, $"--cliprange must be in (0, 1), got {ClipRange}");
        Require(ClipRangeValue > 0 && double.IsFinite(ClipRangeValue), $"--cliprange-value must be a positive number, got {ClipRangeValue}");
        Require(ValueCoef >= 0 && double.IsFinite(ValueCoef), $"--vf-coef must be a non-negative number, got {ValueCoef}");
        Require(PpoEpochs > 0, $"--ppo-epochs must be at least 1, got {PpoEpochs}");
        Require(MiniBatches > 0, $"--mini-batches must be at least 1, got {MiniBatches}");
        Require(ResponseLength > 0, $"--response-length must be at least 1, got {ResponseLength}");
        Require(Temperature > 0 && double.IsFinite(Temperature), $"--temperature must be a positive number, got {Temperature}");
        Require(MissingEosPenalty is null || (MissingEosPenalty > 0 && double.IsFinite(MissingEosPenalty.Value)), $"--missing-eos-penalty must be a positive number, got {MissingEosPenalty}");
        Require(MissingEosPenalty is null || StopAtEos, "a missing-EOS penalty needs responses that stop at EOS");
        Loop.Validate();
        // TRL's exact_div: "`local_batch_size` must be a multiple of `num_mini_batches`"; a mini-batch is whole micro-batches.
        Require(RolloutBatch % MiniBatches == 0 && MiniBatchSize % Loop.BatchSize == 0,
            $"the rollout batch (batch size {Loop.BatchSize} × gradient accumulation {Loop.GradientAccumulation} = {RolloutBatch}) must split into {MiniBatches} mini-batches of whole micro-batches of {Loop.BatchSize}");
        // PPO has no held-out loss to evaluate (TRL's PPO logs sample generations instead).
        Require(Loop.EvalEvery is null, "PPO has no evaluation set; leave the eval interval unset");
        return this;
    }
}
