using Pargs.Checkpoints;
using Pargs.Data;
using Pargs.Experiments;
using Pargs.Rewards;
using Pargs.Tokenizers;
using Pargs.Training;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs train-rm --objective farma | genarm`: a reward model with a vocabulary head (a causal LM started from the
/// base LM, head included), trained with <see cref="VocabularyRewardTrainer"/> and written as a Hugging Face
/// causal-LM folder with <c>"pargs_objective"</c> in config.json (<see cref="VocabularyRewardModel"/>).
/// </summary>
static class VocabularyRewardTraining
{
    public sealed record Request(RewardObjective Objective, string ModelPath, string? TokenizerPath, string DataPath, string? EvalPath,
        string Template, int MaxLength, BadRowPolicy OnBadRow, string OutDir, bool Resume, double Beta, double MaxConstraintWeight,
        Func<bool, TrainingOptions> Loop);

    public static int Run(Request r)
    {
        VocabularyRewardModel rm;
        using (var contents = CheckpointLoader.Load(r.ModelPath))
        {
            rm = VocabularyRewardModel.FromCausalLM(contents, r.Objective);
            rm.Model.Tokenizer = TokenizerLoader.ForCheckpoint(contents, r.TokenizerPath);
        }
        int maxLen = Math.Min(r.MaxLength, rm.Config.MaxPositions - 1); // GenARM scores one EOS after the response
        // Both objectives compare whole responses (FaRMA reads every chosen prefix from the same forward).
        var train = RewardData.Load(r.DataPath, rm.Tokenizer!, r.Template, maxLen, finalOnly: true, r.OnBadRow);
        var eval = r.EvalPath is { } evalPath ? RewardData.Load(evalPath, rm.Tokenizer!, r.Template, maxLen, finalOnly: true, r.OnBadRow) : null;
        var options = new VocabularyRewardTrainingOptions
        {
            Objective = r.Objective, MaxLength = maxLen, Beta = r.Beta, MaxConstraintWeight = r.MaxConstraintWeight, Loop = r.Loop(eval is not null),
        }.Validate();
        using var outputLock = TrainingOutputLock.Acquire(r.OutDir);
        var trainer = new VocabularyRewardTrainer(rm, train, eval, options);
        string name = r.Objective.ToConfigValue();

        TrainingResult? trained = null;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var bar = ctx.AddTask($"train-rm ({name})");
                trained = trainer.Train(new InlineProgress<TrainingProgress>(p =>
                {
                    bar.MaxValue = p.TotalSteps;
                    bar.Value = p.Step;
                    string accuracy = p.Accuracy is { } a ? $" acc {a:P0}" : "";
                    bar.Description = Markup.Escape($"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}{accuracy}");
                }));
            });
        if (trained!.ResumedFrom is { } from) CliErrors.Info($"resumed from {from}");
        else if (r.Resume) CliErrors.Info($"--resume: no checkpoint in {r.OutDir}; trained from the start");

        // Beside metrics.jsonl and the checkpoints, as Hugging Face's Trainer writes it.
        string tmp = Path.Combine(r.OutDir, ".model-tmp");
        rm.Save(tmp);
        foreach (var file in Directory.GetFiles(tmp))
            File.Move(file, Path.Combine(r.OutDir, Path.GetFileName(file)), overwrite: true);
        Directory.Delete(tmp, recursive: true);
        CliErrors.Info($"reward model ({name}, a causal LM with \"pargs_objective\": \"{name}\") written to {r.OutDir} after {trained.Steps} steps; metrics in {Path.Combine(r.OutDir, TrainingLoop.MetricsFile)}");
        if (trainer.Evaluate() is { } metrics)
            CliErrors.Info($"eval: accuracy {metrics["accuracy"]:F3}, loss {metrics["loss"]:F4} on {eval!.Count} pairs");
        return 0;
    }
}
