using System.CommandLine;
using Pargs.Checkpoints;
using Pargs.Rewards;
using Pargs.Tokenizers;
using Pargs.Training;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs train-rm`: a Bradley–Terry reward model initialised from a base LM, trained on whole responses
/// (--objective full) or on every prefix pair (--objective partial, PARGS). Writes the model as a Hugging Face
/// folder, metrics.jsonl and checkpoint-&lt;step&gt; folders into --out; --resume continues from the latest checkpoint.
/// </summary>
public static class TrainRmCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Base LM to start from: HF folder, .gguf or llama2.c .bin", Required = true };
        var tokenizer = ModelOptions.Tokenizer();
        var data = new Option<string>("--data") { Description = "Preference pairs (JSONL / .jsonl.gz: TRL, HH-RLHF or TL;DR format)", Required = true };
        var evalData = new Option<string>("--eval-data") { Description = "Held-out pairs evaluated every --eval-every steps and at the end" };
        var objective = new Option<string>("--objective") { Description = "full (whole responses, TRL) | partial (every prefix, PARGS) | farma (vocabulary head: BT + max constraint) | genarm (autoregressive RM)", DefaultValueFactory = _ => "partial" };
        var output = new Option<string>("--out", "-o") { Description = "Output folder (model, metrics.jsonl, checkpoints)", Required = true };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the data", DefaultValueFactory = _ => 1 };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Optimizer steps (overrides --epochs)" };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (AdamW)", DefaultValueFactory = _ => 5e-5 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW decoupled weight decay", DefaultValueFactory = _ => 0.0 };
        var batchSize = new Option<int>("--batch-size") { Description = "Pairs per forward", DefaultValueFactory = _ => 8 };
        var gradAccum = new Option<int>("--grad-accum") { Description = "Forwards per optimizer step", DefaultValueFactory = _ => 1 };
        var maxLength = new Option<int>("--max-length") { Description = "Pairs whose prompt + response is longer are dropped", DefaultValueFactory = _ => 512 };
        var warmup = new Option<int>("--warmup") { Description = "Warm-up steps", DefaultValueFactory = _ => 0 };
        var schedule = new Option<string>("--schedule") { Description = "constant | linear | cosine", DefaultValueFactory = _ => "linear" };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "Gradient clipping bound (0 = none)", DefaultValueFactory = _ => 1.0 };
        var center = new Option<double>("--center-rewards") { Description = "center_rewards_coefficient (TRL)", DefaultValueFactory = _ => 0.0 };
        var seed = new Option<int>("--seed") { Description = "Seed of the data order and the score head", DefaultValueFactory = _ => 42 };
        var logEvery = new Option<int>("--log-every") { Description = "Steps per metrics line", DefaultValueFactory = _ => 10 };
        var evalEvery = new Option<int?>("--eval-every") { Description = "Evaluate --eval-data every N steps" };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = "Write checkpoint-<step> every N steps (the last 2 are kept)" };
        var resume = new Option<bool>("--resume") { Description = "Continue from the latest checkpoint in --out" };
        var threads = ModelOptions.Threads(byDefault: 2);
        var onBadRow = DataOptions.OnBadRow();
        var beta = new Option<double>("--beta") { Description = "GenARM's β in −log σ(β·(Σ log π_r(y_w) − Σ log π_r(y_l)))", DefaultValueFactory = _ => GenArmLoss.DefaultBeta };
        var maxConstraintWeight = new Option<double>("--max-constraint-weight") { Description = "FaRMA: weight λ of the max constraint (its micro-batches alternate with Bradley–Terry)", DefaultValueFactory = _ => 1.0 };
        var template = new Option<string>("--template") { Description = "Prompt template: plain | hh | chatml", DefaultValueFactory = _ => "plain" };

        var command = new Command("train-rm", "Train a reward model (full-sequence or partial-sequence Bradley–Terry).")
        {
            model, tokenizer, data, evalData, objective, output, epochs, maxSteps, lr, weightDecay, batchSize, gradAccum, maxLength,
            warmup, schedule, maxGradNorm, center, seed, logEvery, evalEvery, checkpointEvery, resume, threads, template, onBadRow,
            beta, maxConstraintWeight,
        };
        command.SetAction(CliErrors.Action(result =>
        {
            ModelOptions.SetThreads(result.GetValue(threads));
            var goal = RewardObjectives.Parse(result.GetValue(objective)!, "--objective");
            string outDir = CliErrors.OutputFolder(result.GetValue(output)!);
            CliErrors.NoEffectUnless(result, evalEvery, result.GetValue(evalData) is not null, "without --eval-data"); // before any data is read
            CliErrors.NoEffectUnless(result, beta, goal == RewardObjective.Genarm, "without --objective genarm");
            CliErrors.NoEffectUnless(result, maxConstraintWeight, goal == RewardObjective.Farma, "without --objective farma");
            CliErrors.NoEffectUnless(result, center, !goal.HasVocabularyHead(), $"with --objective {goal.ToConfigValue()}");
            int seedValue = result.GetValue(seed);
            double clip = result.GetValue(maxGradNorm); // 0 turns clipping off; NaN and negatives are refused by Validate
            TrainingOptions Loop(bool hasEval) => new TrainingOptions
            {
                LearningRate = result.GetValue(lr), WeightDecay = result.GetValue(weightDecay), BatchSize = result.GetValue(batchSize),
                GradientAccumulation = result.GetValue(gradAccum), WarmupSteps = result.GetValue(warmup),
                Schedule = LearningRateSchedule.Parse(result.GetValue(schedule)!), MaxGradNorm = clip == 0 ? null : clip,
                Seed = seedValue, Epochs = result.GetValue(epochs), MaxSteps = result.GetValue(maxSteps), LogEvery = result.GetValue(logEvery),
                EvalEvery = hasEval ? result.GetValue(evalEvery) : null, CheckpointEvery = result.GetValue(checkpointEvery),
                OutputDir = outDir, Resume = result.GetValue(resume), Threads = result.GetValue(threads),
            }.Validate();
            if (goal.HasVocabularyHead())
                return VocabularyRewardTraining.Run(new VocabularyRewardTraining.Request(goal, result.GetValue(model)!, result.GetValue(tokenizer),
                    result.GetValue(data)!, result.GetValue(evalData), result.GetValue(template)!, result.GetValue(maxLength),
                    DataOptions.ParseOnBadRow(result.GetValue(onBadRow)), outDir, result.GetValue(resume), result.GetValue(beta), result.GetValue(maxConstraintWeight), Loop));

            RewardModel rm;
            using (var contents = CheckpointLoader.Load(result.GetValue(model)!))
            {
                rm = RewardModel.FromCausalLM(contents, seedValue);
                rm.Tokenizer = TokenizerLoader.ForCheckpoint(contents, result.GetValue(tokenizer));
            }
            rm.Objective = goal;
            int maxLen = Math.Min(result.GetValue(maxLength), rm.Config.MaxPositions);
            string templateName = result.GetValue(template)!;
            var train = RewardData.Load(result.GetValue(data)!, rm.Tokenizer!, templateName, maxLen, goal == RewardObjective.Full, DataOptions.ParseOnBadRow(result.GetValue(onBadRow)));
            var eval = result.GetValue(evalData) is { } evalPath ? RewardData.Load(evalPath, rm.Tokenizer!, templateName, maxLen, finalOnly: false, DataOptions.ParseOnBadRow(result.GetValue(onBadRow))) : null;

            var options = new RewardTrainingOptions
            {
                Objective = goal,
                MaxLength = maxLen,
                CenterRewardsCoefficient = result.GetValue(center),
                Loop = Loop(eval is not null),
            };
            using var outputLock = TrainingOutputLock.Acquire(outDir); // held through SaveInto: no other run writes here meanwhile
            var trainer = new RewardTrainer(rm, train, eval, options);

            TrainingResult? trained = null;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var bar = ctx.AddTask($"train-rm ({goal.ToConfigValue()})");
                    trained = trainer.Train(new InlineProgress(p =>
                    {
                        bar.MaxValue = p.TotalSteps;
                        bar.Value = p.Step;
                        string accuracy = p.Accuracy is { } a ? $" acc {a:P0}" : "";
                        string eta = p.Eta is { } e ? $" eta {e:hh\\:mm\\:ss}" : "";
                        bar.Description = Markup.Escape($"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}{accuracy}{eta}");
                    }));
                });
            if (trained!.ResumedFrom is { } from) CliErrors.Info($"resumed from {from}");
            else if (result.GetValue(resume)) CliErrors.Info($"--resume: no checkpoint in {outDir}; trained from the start");

            SaveInto(rm, outDir, goal);
            CliErrors.Info($"reward model ({goal.ToConfigValue()}) written to {outDir} after {trained.Steps} steps; metrics in {Path.Combine(outDir, TrainingLoop.MetricsFile)}");
            if (eval != null)
            {
                var evaluation = RewardEvaluator.Evaluate(rm, eval);
                CliErrors.Info($"eval: accuracy {evaluation.Accuracy:F3}, margin {evaluation.MeanMargin:F3} on {evaluation.Pairs} pairs");
            }
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// The model files go beside metrics.jsonl and the checkpoints (as Hugging Face's Trainer does), so they are
    /// saved to a temporary folder (atomically) and then moved in one file at a time.
    /// </summary>
    static void SaveInto(RewardModel rm, string outDir, RewardObjective objective)
    {
        string tmp = Path.Combine(outDir, ".model-tmp");
        rm.Save(tmp, objective);
        foreach (var file in Directory.GetFiles(tmp))
            File.Move(file, Path.Combine(outDir, Path.GetFileName(file)), overwrite: true);
        Directory.Delete(tmp, recursive: true);
    }

    /// <summary>Reports on the training thread (System.Progress would post to the thread pool, out of order).</summary>
    sealed class InlineProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
