namespace Pargs.Training;

/// <summary>How the learning rate moves after warm-up (Hugging Face's <c>lr_scheduler_type</c>).</summary>
public enum Schedule { Constant, Linear, Cosine }

/// <summary>
/// Options of <see cref="TrainingLoop"/>, shared by every trainer (reward model, DPO). Defaults follow Hugging
/// Face's TrainingArguments where it has one (AdamW β = 0.9/0.999, ε = 1e-8, clip 1.0, linear decay).
/// </summary>
public sealed record TrainingOptions
{
    public double LearningRate { get; init; } = 5e-5;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Decoupled weight decay of torch.optim.AdamW (applied to every parameter).</summary>
    public double WeightDecay { get; init; } = 0.0;
    public int WarmupSteps { get; init; } = 0;
    public Schedule Schedule { get; init; } = Schedule.Linear;
    /// <summary>Examples per forward (micro-batch).</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Micro-batches per optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>clip_grad_norm_ bound on the global L2 norm; null = no clipping.</summary>
    public double? MaxGradNorm { get; init; } = 1.0;
    /// <summary>Seeds the data order (one seeded permutation per epoch).</summary>
    public int Seed { get; init; } = 42;
    public int Epochs { get; init; } = 1;
    /// <summary>Optimizer steps; overrides <see cref="Epochs"/> when set.</summary>
    public int? MaxSteps { get; init; }
    /// <summary>Write a metrics line every this many optimizer steps (and at the last).</summary>
    public int LogEvery { get; init; } = 10;
    public int? EvalEvery { get; init; }
    public int? CheckpointEvery { get; init; }
    /// <summary>Checkpoints kept on disk (oldest deleted first).</summary>
    public int KeepCheckpoints { get; init; } = 2;
    /// <summary>Threads for torch and Pargs' CPU kernels (<see cref="Models.Cpu.ComputeThreads"/>); null leaves the defaults.</summary>
    public int? Threads { get; init; }
    /// <summary>Where metrics.jsonl and checkpoint-&lt;step&gt; folders go; null = nothing written.</summary>
    public string? OutputDir { get; init; }
    /// <summary>Continue from the latest checkpoint in <see cref="OutputDir"/> (when there is one).</summary>
    public bool Resume { get; init; }

    public TrainingOptions Validate()
    {
        void Require(bool ok, string what) { if (!ok) throw new PargsException($"training options: {what}"); }
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"learning rate must be a positive number, got {LearningRate}");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), $"weight decay must be a non-negative number, got {WeightDecay}");
        Require(Beta1 >= 0 && Beta1 < 1 && Beta2 >= 0 && Beta2 < 1, $"AdamW betas must be in [0, 1), got {Beta1} and {Beta2}");
        Require(Epsilon > 0 && double.IsFinite(Epsilon), $"AdamW epsilon must be a positive number, got {Epsilon}");
        Require(MaxGradNorm is null || (MaxGradNorm > 0 && double.IsFinite(MaxGradNorm.Value)), $"the gradient-clipping norm must be a positive number, got {MaxGradNorm}");
        Require(BatchSize > 0, $"batch size must be positive, got {BatchSize}");
        Require(GradientAccumulation > 0, $"gradient accumulation must be positive, got {GradientAccumulation}");
        Require(Epochs > 0, $"epochs must be positive, got {Epochs}");
        Require(MaxSteps is null or > 0, $"max steps must be positive, got {MaxSteps}");
        Require(WarmupSteps >= 0, $"warm-up steps must not be negative, got {WarmupSteps}");
        Require(LogEvery > 0, $"log interval must be positive, got {LogEvery}");
        Require(EvalEvery is null or > 0, $"eval interval must be positive, got {EvalEvery}");
        Require(CheckpointEvery is null or > 0, $"checkpoint interval must be positive, got {CheckpointEvery}");
        Require(KeepCheckpoints > 0, $"checkpoints to keep must be positive, got {KeepCheckpoints}");
        Require(Threads is null or > 0, $"threads must be positive, got {Threads}");
        Require(!Resume || OutputDir != null, "resuming needs an output folder (where the checkpoints are)");
        return this;
    }
}
