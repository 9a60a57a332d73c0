using System.CommandLine;
using Pargs.Checkpoints;
using Pargs.Data;
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
        var model = new Option<string>("--model", "-m") { Description = "Base LM to start from (HF folder, .gguf or llama2.c .bin), or an encoder classifier folder (BERT, RoBERTa, DistilBERT, DeBERTa-v2/v3)", Required = true };
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
        var input = new Option<string>("--input") { Description = "Encoder backbone: how (prompt, response) is read, saved with the model: text (one sequence) | pair (prompt, response as a pair); default the folder's pargs_input, else text" };
        var prefixStride = new Option<int?>("--prefix-stride") { Description = "Encoder backbone: compare prefixes i = every Nth token (and L) instead of every one; each prefix is a forward" };
        var prefixSample = new Option<int?>("--prefix-sample") { Description = "Encoder backbone: compare N prefixes per pair drawn with --seed instead of every one" };

        var command = new Command("train-rm", "Train a reward model (full-sequence or partial-sequence Bradley–Terry).")
        {
            model, tokenizer, data, evalData, objective, output, epochs, maxSteps, lr, weightDecay, batchSize, gradAccum, maxLength,
            warmup, schedule, maxGradNorm, center, seed, logEvery, evalEvery, checkpointEvery, resume, threads, template, onBadRow,
            beta, maxConstraintWeight, input, prefixStride, prefixSample,
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
            bool encoder = Pargs.Rewards.Gold.GoldRewards.IsEncoderFolder(result.GetValue(model)!);
            foreach (var encoderOnly in new Option[] { input, prefixStride, prefixSample })
                CliErrors.NoEffectUnless(result, encoderOnly, encoder, "unless --model is an encoder classifier folder (the causal path reads every prefix from one forward)");
            CliErrors.NoEffectUnless(result, prefixStride, goal == RewardObjective.Partial || result.GetValue(evalData) is not null, "with --objective full and no --eval-data");
            CliErrors.NoEffectUnless(result, prefixSample, goal == RewardObjective.Partial || result.GetValue(evalData) is not null, "with --objective full and no --eval-data");
            if (encoder)
            {
                if (goal.HasVocabularyHead())
                    throw new PargsException($"--objective {goal.ToConfigValue()} trains a vocabulary head on a causal LM; an encoder classifier trains with --objective full or partial");
                if (result.GetValue(prefixStride) is not null && result.GetValue(prefixSample) is not null)
                    throw new PargsException("--prefix-stride and --prefix-sample choose the prefixes two ways; give one");
                PrefixPositions positions = result.GetValue(prefixStride) is { } every ? new PrefixPositions.Stride(every)
                    : result.GetValue(prefixSample) is { } count ? new PrefixPositions.RandomSubset(count, seedValue) : new PrefixPositions.All();
                return TrainEncoder(new EncoderRequest(goal, result.GetValue(model)!, result.GetValue(tokenizer), result.GetValue(input),
                    result.GetValue(data)!, result.GetValue(evalData), result.GetValue(template)!, result.GetValue(maxLength),
                    DataOptions.ParseOnBadRow(result.GetValue(onBadRow)), outDir, result.GetValue(resume), seedValue, result.GetValue(center), positions, Loop));
            }
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

            var trained = RunWithProgress(goal, trainer.Train);
            if (trained.ResumedFrom is { } from) CliErrors.Info($"resumed from {from}");
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

    sealed record EncoderRequest(RewardObjective Objective, string ModelPath, string? TokenizerPath, string? Input, string DataPath, string? EvalPath,
        string Template, int MaxLength, BadRowPolicy OnBadRow, string OutDir, bool Resume, int Seed, double Center, PrefixPositions Positions,
        Func<bool, TrainingOptions> Loop);

    /// <summary>
    /// train-rm with an encoder classifier as the backbone: a one-label head (a multi-label one re-initialised, as TRL's
    /// num_labels = 1), Bradley–Terry on (prompt, response) read as --input says, prefixes materialized for partial.
    /// </summary>
    static int TrainEncoder(EncoderRequest r)
    {
        var input = r.Input is { } given ? EncoderInputs.Parse(given) ?? throw new PargsException($"--input \"{given}\" is not known (expected text or pair)")
            : SavedInput(r.ModelPath) ?? EncoderInput.Text;
        if (r.Positions is PrefixPositions.Stride { Every: < 1 } or PrefixPositions.RandomSubset { Count: < 1 })
            throw new PargsException("--prefix-stride and --prefix-sample must be at least 1");
        using var rm = EncoderRewardModel.ForTraining(r.ModelPath, input, r.Seed, r.TokenizerPath, out string? note);
        if (note is not null) CliErrors.Info($"{note} (--seed {r.Seed})");
        int maxLen = Math.Min(r.MaxLength, rm.Classifier.Config.MaxTokens);
        var prefixes = new PartialPairOptions { Positions = r.Positions };
        var trainPrefixes = r.Objective == RewardObjective.Full ? new PartialPairOptions { Positions = new PrefixPositions.FinalOnly() } : prefixes;
        var train = LoadEncoderPairs(r.DataPath, rm, r.Template, maxLen, trainPrefixes, r.OnBadRow);
        var eval = r.EvalPath is { } evalPath ? LoadEncoderPairs(evalPath, rm, r.Template, maxLen, prefixes, r.OnBadRow) : null;
        var options = new RewardTrainingOptions
        {
            Objective = r.Objective, MaxLength = maxLen, CenterRewardsCoefficient = r.Center, Loop = r.Loop(eval is not null),
        };
        using var outputLock = TrainingOutputLock.Acquire(r.OutDir);
        var trainer = new EncoderRewardTrainer(rm, train, eval, options);
        var trained = RunWithProgress(r.Objective, trainer.Train);
        if (trained.ResumedFrom is { } from) CliErrors.Info($"resumed from {from}");
        else if (r.Resume) CliErrors.Info($"--resume: no checkpoint in {r.OutDir}; trained from the start");
        string tmp = Path.Combine(r.OutDir, ".model-tmp");
        rm.Save(tmp, r.Objective);
        MoveInto(tmp, r.OutDir);
        CliErrors.Info($"encoder reward model ({r.Objective.ToConfigValue()}, input {input.ToConfigValue()}) written to {r.OutDir} after {trained.Steps} steps; metrics in {Path.Combine(r.OutDir, TrainingLoop.MetricsFile)}");
        if (trainer.Evaluate() is { } metrics)
            CliErrors.Info($"eval: accuracy {metrics["accuracy"]:F3}, margin {metrics["margin"]:F3} on {eval!.Count} pairs");
        return 0;
    }

    static EncoderInput? SavedInput(string dir)
    {
        var field = Pargs.Json.CheckedJson.ReadFile(Path.Combine(dir, HuggingFaceFolder.ConfigFile)).Object()[EncoderInputs.ConfigField];
        return field.IsMissing ? null : EncoderInputs.Parse(field.String()) ?? throw field.Error($"\"{field.String()}\" is not known (expected \"text\" or \"pair\")");
    }

    static IReadOnlyList<EncoderPreferencePair> LoadEncoderPairs(string path, EncoderRewardModel rm, string template, int maxLength, PartialPairOptions prefixes, BadRowPolicy onBadRow)
    {
        var read = PreferenceReader.Read(path, new PreferenceReadOptions { Template = PromptTemplate.FromName(template, "--template"), OnBadRow = onBadRow });
        var built = EncoderPreferencePairs.Build(rm, read.Pairs, prefixes, maxLength);
        var report = built.Report;
        CliErrors.Info($"{path}: {read.Report.RowsKept} pairs read ({read.Report.RowsSkipped} skipped), {report.PairsKept} kept " +
                       $"({report.FilteredTooLong} longer than {maxLength} tokens, {report.FilteredTooShort} too short); {report.MeanPrefixesPerPair:F1} compared prefixes per pair");
        if (built.Pairs.Count == 0) throw new PargsException($"{path}: no usable preference pairs");
        return built.Pairs;
    }

    static TrainingResult RunWithProgress(RewardObjective goal, Func<IProgress<TrainingProgress>?, CancellationToken, TrainingResult> train)
    {
        TrainingResult? trained = null;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var bar = ctx.AddTask($"train-rm ({goal.ToConfigValue()})");
                trained = train(new InlineProgress<TrainingProgress>(p =>
                {
                    bar.MaxValue = p.TotalSteps;
                    bar.Value = p.Step;
                    string accuracy = p.Accuracy is { } a ? $" acc {a:P0}" : "";
                    string eta = p.Eta is { } e ? $" eta {e:hh\\:mm\\:ss}" : "";
                    bar.Description = Markup.Escape($"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4}{accuracy}{eta}");
                }), default);
            });
        return trained!;
    }

    static void MoveInto(string tmp, string outDir)
    {
        foreach (var file in Directory.GetFiles(tmp))
            File.Move(file, Path.Combine(outDir, Path.GetFileName(file)), overwrite: true);
        Directory.Delete(tmp, recursive: true);
    }

    /// <summary>
    /// The model files go beside metrics.jsonl and the checkpoints (as Hugging Face's Trainer does), so they are
    /// saved to a temporary folder (atomically) and then moved in one file at a time.
    /// </summary>
    static void SaveInto(RewardModel rm, string outDir, RewardObjective objective)
    {
        string tmp = Path.Combine(outDir, ".model-tmp");
        rm.Save(tmp, objective);
        MoveInto(tmp, outDir);
    }
}
