using System.CommandLine;
using Pargs.Data;
using Pargs.Models;
using Pargs.Training;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs train-dpo`: fine-tunes a causal LM on preference pairs with DPO (the offline baseline of the PARGS
/// paper) and saves the policy as a Hugging Face causal-LM folder --out/model (a save replaces its whole folder,
/// so it cannot be --out itself, which holds the checkpoints and metrics.jsonl);
/// --resume continues from the latest checkpoint there (give the same base --model and data).
/// </summary>
public static class TrainDpoCommand
{
    /// <summary>Subfolder of --out that receives the trained policy.</summary>
    public const string PolicyFolder = "model";

    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Base causal LM (HF folder, .gguf or llama2.c .bin); also the frozen reference", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file overriding the one found with the model" };
        var data = new Option<string>("--data", "-d") { Description = "Preference pairs (.jsonl or .jsonl.gz; TRL, HH-RLHF or TL;DR formats)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output folder: model/ (the trained policy), checkpoint-*/, metrics.jsonl", Required = true };
        var beta = new Option<double>("--beta") { Description = "DPO β (KL strength; larger stays closer to the reference)", DefaultValueFactory = _ => 0.1 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (AdamW, linear decay)", DefaultValueFactory = _ => 5e-6 };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training pairs", DefaultValueFactory = _ => 1 };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Optimizer steps (overrides --epochs)" };
        var batchSize = new Option<int>("--batch-size") { Description = "Pairs per micro-batch", DefaultValueFactory = _ => 8 };
        var accumulation = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
        var warmup = new Option<int>("--warmup-steps") { Description = "Linear warm-up steps", DefaultValueFactory = _ => 0 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest prompt + response (+ EOS) kept; longer pairs are filtered out", DefaultValueFactory = _ => 512 };
        var template = new Option<string>("--template") { Description = "Prompt template: plain | hh | chatml", DefaultValueFactory = _ => "plain" };
        var onBadRow = DataOptions.OnBadRow();
        var evalFraction = new Option<double>("--eval-fraction") { Description = "Share of pairs held out for evaluation", DefaultValueFactory = _ => 0.0 };
        var evalEvery = new Option<int?>("--eval-every") { Description = "Evaluate every N steps (default: at the end when there is an eval set)" };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = "Save a resumable checkpoint every N steps" };
        var seed = new Option<int>("--seed") { Description = "Seed of the data order and the eval split", DefaultValueFactory = _ => 42 };
        var resume = new Option<bool>("--resume") { Description = "Continue from the latest checkpoint in --out" };
        var loraRank = new Option<int?>("--lora-rank") { Description = "Train rank-r LoRA adapters instead of every weight (merged into the saved model)" };
        var loraAlpha = new Option<double>("--lora-alpha") { Description = "LoRA alpha (update scale alpha/rank)", DefaultValueFactory = _ => 16 };
        var loraTargets = new Option<string>("--lora-targets") { Description = "Comma-separated module names to adapt", DefaultValueFactory = _ => "q_proj,v_proj" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for TorchSharp" };

        var command = new Command("train-dpo", "Fine-tune a causal LM on preference pairs with Direct Preference Optimization.")
        {
            model, tokenizer, data, output, beta, lr, epochs, maxSteps, batchSize, accumulation, warmup, maxLength, template, onBadRow,
            evalFraction, evalEvery, checkpointEvery, seed, resume, loraRank, loraAlpha, loraTargets, threads,
        };
        command.SetAction(CliErrors.Action(result =>
        {
            string outDir = CliErrors.OutputFolder(result.GetValue(output)!);
            int? threadCount = result.GetValue(threads);
            if (threadCount is { } t) ModelOptions.SetThreads(t);
            var loop = new TrainingOptions
            {
                LearningRate = result.GetValue(lr), Epochs = result.GetValue(epochs), MaxSteps = result.GetValue(maxSteps),
                BatchSize = result.GetValue(batchSize), GradientAccumulation = result.GetValue(accumulation),
                WarmupSteps = result.GetValue(warmup), Seed = result.GetValue(seed), CheckpointEvery = result.GetValue(checkpointEvery),
                OutputDir = outDir, Resume = result.GetValue(resume), Threads = threadCount, LogEvery = 1,
            };
            CliErrors.NoEffectUnless(result, loraAlpha, result.GetValue(loraRank) is not null, "without --lora-rank");
            CliErrors.NoEffectUnless(result, loraTargets, result.GetValue(loraRank) is not null, "without --lora-rank");
            var lora = result.GetValue(loraRank) is { } rank
                ? new LoraOptions
                {
                    Rank = rank, Alpha = result.GetValue(loraAlpha), Seed = loop.Seed,
                    TargetModules = result.GetValue(loraTargets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                }
                : null;
            var options = new DpoTrainingOptions { Beta = result.GetValue(beta), Loop = loop, MaxLength = result.GetValue(maxLength), Lora = lora }.Validate();

            var policy = CausalLM.Load(result.GetValue(model)!, result.GetValue(tokenizer));
            var tok = policy.Tokenizer ?? throw new PargsException($"{policy.Source}: no tokenizer found (pass --tokenizer)");
            var read = PreferenceReader.Read(result.GetValue(data)!, new PreferenceReadOptions
            {
                Template = Template(result.GetValue(template)!),
                OnBadRow = DataOptions.ParseOnBadRow(result.GetValue(onBadRow)),
            });
            // The trainer appends one EOS to each response, so the tokenizer keeps one token of room for it.
            var tokenized = new PairTokenizer(tok, new PairTokenizerOptions
            {
                MaxLength = options.MaxLength!.Value - (options.AppendEos ? 1 : 0), VocabSize = policy.Config.VocabSize,
            }).Tokenize(read.Pairs, read.Report.Path);
            var report = tokenized.Report;
            CliErrors.Info($"{read.Report.Path}: {report.PairsKept} of {report.PairsIn} pairs kept ({read.Report.RowsSkipped} bad rows skipped, {report.FilteredTooLong} too long, {report.FilteredTooShort} too short)");
            var (train, eval) = DataSplit.Split(tokenized.Pairs, result.GetValue(evalFraction), loop.Seed);
            if (eval.Count > 0) options = options with { Loop = loop with { EvalEvery = result.GetValue(evalEvery) ?? int.MaxValue } };

            using var outputLock = TrainingOutputLock.Acquire(outDir); // held through SavePolicy: no other run writes here meanwhile
            var trainer = new DpoTrainer(policy, train, eval, options);
            var progress = new ConsoleProgress();
            var run = trainer.Train(progress);
            Console.Error.WriteLine();
            if (run.ResumedFrom is { } from) CliErrors.Info($"resumed from {from}");
            else if (result.GetValue(resume)) CliErrors.Info($"--resume: no checkpoint in {outDir}; trained from the start");
            string modelDir = Path.Combine(outDir, PolicyFolder);
            trainer.SavePolicy(modelDir);
            var last = run.LogHistory.LastOrDefault(r => r.ContainsKey("rewards/margins"));
            CliErrors.Info($"saved the DPO policy to {modelDir} after {run.Steps} steps" +
                (last is null ? "" : $" (loss {last["loss"]:F4}, rewards/margins {last["rewards/margins"]:F4}, rewards/accuracies {last["rewards/accuracies"]:F3})"));
            return 0;
        }));
        return command;
    }

    static PromptTemplate Template(string name) => name.ToLowerInvariant() switch
    {
        "plain" => PromptTemplate.Plain,
        "hh" => PromptTemplate.Hh,
        "chatml" => PromptTemplate.ChatMl,
        _ => throw new PargsException($"--template {name}: unknown (expected plain, hh or chatml)"),
    };

    /// <summary>One status line on stderr, rewritten after each optimizer step.</summary>
    sealed class ConsoleProgress : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
            => Console.Error.Write($"\rstep {p.Step}/{p.TotalSteps}  loss {p.Loss:F4}{(p.Eta is { } eta ? $"  eta {eta:hh\\:mm\\:ss}" : "")}   ");
    }
}
