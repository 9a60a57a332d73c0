using System.CommandLine;
using Pargs.Data;
using Pargs.Models;
using Pargs.Training;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs train-ppo`: fine-tunes a causal LM with PPO against a reward model, as TRL's PPOTrainer does (defaults from
/// TRL's PPOConfig), and saves the policy as a Hugging Face causal-LM folder --out/model (checkpoints and metrics.jsonl
/// stay in --out); --resume continues from the latest checkpoint there (give the same base --model, --rm and prompts).
/// </summary>
public static class TrainPpoCommand
{
    /// <summary>Subfolder of --out that receives the trained policy.</summary>
    public const string PolicyFolder = "model";

    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Base causal LM (HF folder, .gguf or llama2.c .bin); also the frozen reference", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file overriding the one found with the model" };
        var rm = new Option<string>("--rm") { Description = "Reward model folder whose score of prompt + response PPO maximises (pargs train-rm --objective full)", Required = true };
        var prompts = new Option<string>("--prompts", "-p") { Description = "Training prompts: one per line, or JSONL with \"prompt\"", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output folder: model/ (the trained policy), checkpoint-*/, metrics.jsonl", Required = true };
        var klCoef = new Option<double>("--kl-coef") { Description = "β of the per-token reward −β·KL(policy ‖ reference)", DefaultValueFactory = _ => 0.05 };
        var klEstimator = new Option<string>("--kl-estimator") { Description = "Per-token KL estimate: k1 (log π − log π_ref) or k3", DefaultValueFactory = _ => "k1" };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (AdamW, linear decay over the updates)", DefaultValueFactory = _ => 3e-6 };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the prompts (each update samples one rollout batch)", DefaultValueFactory = _ => 1 };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Updates (rollout batches); overrides --epochs" };
        var batchSize = new Option<int>("--batch-size") { Description = "Rows per forward (micro-batch)", DefaultValueFactory = _ => 8 };
        var accumulation = new Option<int>("--grad-accum") { Description = "Micro-batches per rollout batch (rollout batch = batch size × this)", DefaultValueFactory = _ => 1 };
        var miniBatches = new Option<int>("--mini-batches") { Description = "Optimizer steps per pass over a rollout batch", DefaultValueFactory = _ => 1 };
        var ppoEpochs = new Option<int>("--ppo-epochs") { Description = "Passes over each rollout batch", DefaultValueFactory = _ => 4 };
        var responseLength = new Option<int>("--response-length") { Description = "Most tokens sampled per response", DefaultValueFactory = _ => 53 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature of the rollouts (and of every log-probability)", DefaultValueFactory = _ => 0.7 };
        var noStop = new Option<bool>("--no-stop-at-eos") { Description = "Sample every response to --response-length instead of ending it at EOS" };
        var missingEos = new Option<double?>("--missing-eos-penalty") { Description = "Subtracted from the score of a response that did not end with EOS" };
        var whiten = new Option<bool>("--whiten-rewards") { Description = "Whiten the per-token rewards before GAE" };
        var cliprange = new Option<double>("--cliprange") { Description = "Clip range ε of the policy ratio", DefaultValueFactory = _ => 0.2 };
        var cliprangeValue = new Option<double>("--cliprange-value") { Description = "Clip range of the value predictions", DefaultValueFactory = _ => 0.2 };
        var vfCoef = new Option<double>("--vf-coef") { Description = "Weight of the value loss", DefaultValueFactory = _ => 0.1 };
        var gamma = new Option<double>("--gamma") { Description = "Discount γ of GAE", DefaultValueFactory = _ => 1.0 };
        var lam = new Option<double>("--lam") { Description = "λ of GAE", DefaultValueFactory = _ => 0.95 };
        var maxGradNorm = new Option<double?>("--max-grad-norm") { Description = "Clip the gradient's global norm (TRL's PPO does not clip)" };
        var warmup = new Option<int>("--warmup-steps") { Description = "Linear warm-up, in updates", DefaultValueFactory = _ => 0 };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = "Save a resumable checkpoint every N updates" };
        var seed = new Option<int>("--seed") { Description = "Seed of the prompt order, the rollouts' sampling and the mini-batch order", DefaultValueFactory = _ => 42 };
        var resume = new Option<bool>("--resume") { Description = "Continue from the latest checkpoint in --out" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for TorchSharp" };

        var command = new Command("train-ppo", "Fine-tune a causal LM against a reward model with PPO (TRL's PPOTrainer).")
        {
            model, tokenizer, rm, prompts, output, klCoef, klEstimator, lr, epochs, maxSteps, batchSize, accumulation, miniBatches, ppoEpochs,
            responseLength, temperature, noStop, missingEos, whiten, cliprange, cliprangeValue, vfCoef, gamma, lam, maxGradNorm, warmup,
            checkpointEvery, seed, resume, threads,
        };
        command.SetAction(CliErrors.Action(result =>
        {
            string outDir = CliErrors.OutputFolder(result.GetValue(output)!);
            int? threadCount = result.GetValue(threads);
            if (threadCount is { } t) ModelOptions.SetThreads(t);
            var options = new PpoTrainingOptions
            {
                KlCoef = result.GetValue(klCoef),
                KlEstimator = result.GetValue(klEstimator)!.ToLowerInvariant() switch
                {
                    "k1" => PpoKlEstimator.K1,
                    "k3" => PpoKlEstimator.K3,
                    var other => throw new PargsException($"--kl-estimator {other}: unknown (expected k1 or k3)"),
                },
                Gamma = result.GetValue(gamma), Lambda = result.GetValue(lam), ClipRange = result.GetValue(cliprange),
                ClipRangeValue = result.GetValue(cliprangeValue), ValueCoef = result.GetValue(vfCoef), PpoEpochs = result.GetValue(ppoEpochs),
                MiniBatches = result.GetValue(miniBatches), ResponseLength = result.GetValue(responseLength), Temperature = result.GetValue(temperature),
                StopAtEos = !result.GetValue(noStop), MissingEosPenalty = result.GetValue(missingEos), WhitenRewards = result.GetValue(whiten),
                ValueHeadSeed = result.GetValue(seed),
                Loop = new TrainingOptions
                {
                    LearningRate = result.GetValue(lr), Epochs = result.GetValue(epochs), MaxSteps = result.GetValue(maxSteps),
                    BatchSize = result.GetValue(batchSize), GradientAccumulation = result.GetValue(accumulation), MaxGradNorm = result.GetValue(maxGradNorm),
                    WarmupSteps = result.GetValue(warmup), Seed = result.GetValue(seed), CheckpointEvery = result.GetValue(checkpointEvery),
                    OutputDir = outDir, Resume = result.GetValue(resume), Threads = threadCount, LogEvery = 1,
                },
            }.Validate();

            string promptPath = result.GetValue(prompts)!;
            var texts = PromptFile.Read(promptPath);
            var rewardModel = RewardModelFiles.LoadForDecoding(result.GetValue(rm)!);
            var policy = CausalLM.Load(result.GetValue(model)!, result.GetValue(tokenizer));
            var tok = policy.Tokenizer ?? throw new PargsException($"{policy.Source}: no tokenizer found (pass --tokenizer)");
            var ids = texts.Select(text => tok.Encode(text, addBos: true)).ToList();
            for (int i = 0; i < ids.Count; i++)
                if (ids[i].Length + options.ResponseLength > policy.Config.MaxPositions)
                    throw new PargsException($"{promptPath}: prompt {i + 1} is {ids[i].Length} tokens; with --response-length {options.ResponseLength} that exceeds the model's {policy.Config.MaxPositions} positions");
            // The reference is the base model as loaded, kept frozen beside the policy.
            var reference = CausalLM.Load(result.GetValue(model)!, result.GetValue(tokenizer));
            CliErrors.Info($"{promptPath}: {ids.Count} prompts; rollout batch {options.RolloutBatch}, {options.PpoEpochs} PPO epochs × {options.MiniBatches} mini-batch(es) per update");

            using var outputLock = TrainingOutputLock.Acquire(outDir); // held through SavePolicy: no other run writes here meanwhile
            var trainer = new PpoTrainer(policy, new RewardModelPpoScorer(rewardModel, policy.Info), ids, options, reference);
            var run = trainer.Train(new ConsoleProgress());
            Console.Error.WriteLine();
            if (run.ResumedFrom is { } from) CliErrors.Info($"resumed from {from}");
            else if (result.GetValue(resume)) CliErrors.Info($"--resume: no checkpoint in {outDir}; trained from the start");
            string modelDir = Path.Combine(outDir, PolicyFolder);
            trainer.SavePolicy(modelDir);
            var last = run.LogHistory.LastOrDefault(r => r.ContainsKey("objective/scores"));
            CliErrors.Info($"saved the PPO policy to {modelDir} after {run.Steps} updates" +
                (last is null ? "" : $" (objective/scores {last["objective/scores"]:F4}, objective/kl {last["objective/kl"]:F4}, objective/rlhf_reward {last["objective/rlhf_reward"]:F4})"));
            return 0;
        }));
        return command;
    }

    /// <summary>One status line on stderr, rewritten after each update.</summary>
    sealed class ConsoleProgress : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
            => Console.Error.Write($"\rupdate {p.Step}/{p.TotalSteps}  loss {p.Loss:F4}{(p.Eta is { } eta ? $"  eta {eta:hh\\:mm\\:ss}" : "")}   ");
    }
}
