using Pargs.Models;
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>What a finished run did: optimizer steps, every logged metrics line, the checkpoint it resumed from.</summary>
public sealed record TrainingResult(int Steps, IReadOnlyList<IReadOnlyDictionary<string, double>> LogHistory, string? ResumedFrom);

/// <summary>
/// The optimisation loop every Pargs trainer shares: AdamW (torch.optim.AdamW), warm-up + decay schedule,
/// gradient accumulation and clipping, a data order fixed by (seed, epoch), metrics in JSONL (TRL names), eval
/// every N steps, and atomic checkpoints that a resumed run continues from to the same final weights.
/// The data order is a flat stream of micro-batches over epochs; optimizer step s consumes micro-batches
/// s·A … s·A + A − 1 (A = gradient accumulation), so a checkpoint only needs the step to know where data resumes.
/// The models have no dropout, so no torch random state needs saving.
/// </summary>
public sealed class TrainingLoop(ITrainingTask task, TrainingOptions options)
{
    public const string MetricsFile = "metrics.jsonl";

    public TrainingResult Run(IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        options.Validate();
        if (options.Threads is { } threads) Models.Cpu.ComputeThreads.Set(threads);
        var lengths = task.ExampleLengths;
        if (lengths.Count == 0) throw new PargsException("there are no training examples");
        int perEpoch = LengthBatches.CountPerEpoch(lengths.Count, options.BatchSize);
        int accumulation = options.GradientAccumulation;
        double plannedSteps = Math.Ceiling((double)options.Epochs * perEpoch / accumulation);
        if (options.MaxSteps is null && plannedSteps > int.MaxValue)
            throw new PargsException($"{options.Epochs} epochs of {perEpoch} batches are {plannedSteps} optimizer steps, more than Pargs counts; set fewer epochs or max steps");
        int totalSteps = options.MaxSteps ?? (int)plannedSteps;
        using var outputLock = options.OutputDir is { } lockDir ? TrainingOutputLock.Acquire(lockDir) : null;
        string? metricsPath = options.OutputDir is { } metricsDir ? Path.Combine(metricsDir, MetricsFile) : null;
        try
        {
            return Run(progress, cancellation, lengths, perEpoch, accumulation, totalSteps);
        }
        catch when (metricsPath != null && File.Exists(metricsPath) && new FileInfo(metricsPath).Length == 0)
        {
            // A run that fails before its first metrics line (diverged at once, bad resume) leaves no empty file.
            File.Delete(metricsPath);
            throw;
        }
    }

    TrainingResult Run(IProgress<TrainingProgress>? progress, CancellationToken cancellation, IReadOnlyList<int> lengths, int perEpoch, int accumulation, int totalSteps)
    {
        // Every tensor a run makes is in a DisposeScope: this one (the optimizer's construction, a resumed checkpoint's
        // state, freed when the run ends), a step's (clipping, the update, evaluation and checkpoints, freed per step)
        // or a micro-batch's (its forward and backward). WHY: TorchSharp 0.107 frees an unreferenced tensor's handle in
        // its finalizer, on any thread, even while libtorch still reads it (Models/TransformerBackbone.ForwardInScope).
        using var runScope = NewDisposeScope();
        var parameters = task.Model.parameters().Where(p => p.requires_grad).ToList();
        var optimizer = new Optimizers.AdamW(parameters, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
        var history = new List<IReadOnlyDictionary<string, double>>();
        int step = 0;
        string? resumedFrom = null;
        var checkpoints = options.OutputDir is { } dir ? new TrainingCheckpoints(dir, options.KeepCheckpoints) : null;
        if (checkpoints != null)
        {
            Directory.CreateDirectory(options.OutputDir!);
            if (options.Resume && checkpoints.Latest() is { } latest)
            {
                var state = checkpoints.Restore(latest, task, optimizer);
                if (state.Step > totalSteps)
                    throw new PargsException($"{latest}: the checkpoint is at step {state.Step}, but this run has only {totalSteps} steps; resume with the run's settings (--max-steps, --epochs) or start a new output folder");
                if (state.Seed != options.Seed || state.BatchSize != options.BatchSize || state.GradientAccumulation != accumulation)
                    throw new PargsException($"{latest}: was written with seed {state.Seed}, batch size {state.BatchSize}, gradient accumulation {state.GradientAccumulation}; resume with the same values");
                step = state.Step;
                history.AddRange(state.LogHistory);
                resumedFrom = latest;
            }
            MetricsJsonl.Rewrite(Path.Combine(options.OutputDir!, MetricsFile), history);
        }

        var window = new MetricWindow();
        (int Epoch, IReadOnlyList<int[]> Batches) epochBatches = (-1, Array.Empty<int[]>());
        var clock = Stopwatch.StartNew();
        int firstStep = step;
        task.Model.train();
        while (step < totalSteps)
        {
            using var stepScope = NewDisposeScope();
            cancellation.ThrowIfCancellationRequested();
            double learningRate = LearningRateSchedule.At(step, totalSteps, options.LearningRate, options.WarmupSteps, options.Schedule);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = learningRate;
            optimizer.zero_grad();
            for (int a = 0; a < accumulation; a++)
            {
                long cursor = (long)step * accumulation + a;
                int epoch = (int)(cursor / perEpoch);
                if (epochBatches.Epoch != epoch)
                    epochBatches = (epoch, LengthBatches.ForEpoch(lengths, options.BatchSize, options.Seed, epoch));
                using var scope = NewDisposeScope();
                var result = task.Forward(epochBatches.Batches[(int)(cursor % perEpoch)]);
                result.Loss.DividedBy(accumulation).backward();
                double loss = result.Loss.to(ScalarType.Float64).item<double>();
                if (!double.IsFinite(loss)) throw Diverged(step, $"the loss is {loss}");
                window.Add(loss, result.Metrics);
            }
            if (options.MaxGradNorm is { } maxNorm)
            {
                double norm = nn.utils.clip_grad_norm_(parameters, maxNorm);
                if (!double.IsFinite(norm)) throw Diverged(step, $"the gradient norm is {norm}");
                window.AddGradNorm(norm);
            }
            optimizer.step();
            step++;
            double epochs = (double)step * accumulation / perEpoch;

            if (step % options.LogEvery == 0 || step == totalSteps)
                Log(window.Drain(step, epochs, learningRate), history);
            if (options.EvalEvery is { } every && (step % every == 0 || step == totalSteps))
                Evaluate(step, epochs, history);
            if (checkpoints != null && options.CheckpointEvery is { } save && step % save == 0)
                checkpoints.Save(step, task, optimizer, new TrainerState(step, options.Seed, options.BatchSize, accumulation, history));

            var eta = step > firstStep ? TimeSpan.FromTicks(clock.Elapsed.Ticks / (step - firstStep) * (totalSteps - step)) : (TimeSpan?)null;
            progress?.Report(new TrainingProgress(step, totalSteps, window.LastLoss, window.LastAccuracy, eta));
        }
        task.Model.eval();
        return new TrainingResult(step, history, resumedFrom);
    }

    /// <summary>
    /// A NaN or infinite loss or gradient would poison every weight at this step's update: training stops before
    /// it, instead of saving a NaN model and reporting success. The weights were usually running away for a few
    /// steps already, so the advice is a lower learning rate from the start, not a resume.
    /// </summary>
    PargsException Diverged(int step, string what)
        => new($"training diverged at step {step + 1}: {what}; start again with a learning rate below {options.LearningRate}");

    void Evaluate(int step, double epochs, List<IReadOnlyDictionary<string, double>> history)
    {
        task.Model.eval();
        IReadOnlyDictionary<string, double>? metrics;
        using (no_grad())
        using (NewDisposeScope())
            metrics = task.Evaluate();
        task.Model.train();
        if (metrics is null) return;
        var record = metrics.ToDictionary(kv => "eval_" + kv.Key, kv => kv.Value);
        record["epoch"] = epochs;
        record["step"] = step;
        Log(record, history);
    }

    void Log(Dictionary<string, double> record, List<IReadOnlyDictionary<string, double>> history)
    {
        history.Add(record);
        if (options.OutputDir is { } dir) MetricsJsonl.Append(Path.Combine(dir, MetricsFile), record);
    }
}
