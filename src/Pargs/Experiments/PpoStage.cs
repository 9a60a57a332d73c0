using Pargs.Models;
using Pargs.Rewards;
using Pargs.Training;

namespace Pargs.Experiments;

/// <summary>
/// The PPO stage of the demo: the paper's other offline baseline, RLHF as TRL's PPOTrainer runs it. The policy starts
/// from the base LM (a second copy is the frozen reference) and is trained against the demo's FULL reward model on the
/// train prompts (the prompts the pairs were sampled for; the held-out prompts stay unseen). Rollouts sample at
/// temperature 1 and stop at EOS or at the demo's response length, so the policy is trained for the distribution its
/// row samples from. Budget: the reward models' and DPO's learning rate, gradient clipping, batch and seed, and as many
/// optimizer steps as DPO makes (epochs × train pairs / batch), i.e. that many / 4 updates of one rollout batch each
/// (TRL's 4 PPO epochs, 1 mini-batch). The policy is saved as a Hugging Face causal-LM folder <c>policy/</c>; the
/// generate stage samples from it with top-k (row "ppo"). Logs: <c>logs/metrics.jsonl</c> (TRL's names).
/// `pargs experiment` runs the same stage with its "ppo" section's settings (<see cref="ExperimentConfig.PpoSection"/>).
/// </summary>
public static class PpoStage
{
    public const string PolicyFolder = "policy";

    /// <summary>The demo's PPO: kl_coef <paramref name="klCoef"/>, rollouts at T = 1 of the demo's response length, TRL's other defaults.</summary>
    public static (IReadOnlyList<string>, Dictionary<string, double>) Run(string dir, string baseModelPath, string trainPromptsPath,
        string fullRewardModelDir, string trainPairsPath, double klCoef, int responseLength, TrainingBudget budget,
        IProgress<(int Done, int Total, string Message)>? progress)
    {
        using var rewardModel = RewardModel.Load(fullRewardModelDir);
        int trainPairs = File.ReadLines(trainPairsPath).Count(line => !string.IsNullOrWhiteSpace(line));
        var ppo = new PpoTrainingOptions { KlCoef = klCoef, Temperature = 1.0, ResponseLength = responseLength };
        return Run(dir, baseModelPath, null, StoryPrompts.Read(trainPromptsPath), rewardModel, trainPairs, ppo, budget, progress);
    }

    /// <summary>
    /// Trains the PPO policy on <paramref name="trainPrompts"/> (as given: already rendered with the run's template)
    /// against <paramref name="fullRewardModel"/> (owned by the caller). <paramref name="ppo"/> gives TRL's PPO settings;
    /// its <c>Loop</c> and value-head seed are replaced by <paramref name="budget"/>'s. The budget's batch is the rollout
    /// batch of one update, split into <c>MiniBatches</c> optimizer steps; <paramref name="budget"/>'s max_steps (or
    /// epochs × <paramref name="trainPairs"/> / batch, what DPO makes on that budget) counts optimizer steps, i.e.
    /// that many / (num_ppo_epochs × num_mini_batches) updates.
    /// </summary>
    public static (IReadOnlyList<string>, Dictionary<string, double>) Run(string dir, string baseModelPath, string? tokenizerPath,
        IReadOnlyList<string> trainPrompts, IRewardModel fullRewardModel, int trainPairs, PpoTrainingOptions ppo, TrainingBudget budget,
        IProgress<(int Done, int Total, string Message)>? progress)
    {
        using var policy = CausalLM.Load(baseModelPath, tokenizerPath);
        using var reference = CausalLM.Load(baseModelPath, tokenizerPath);
        var tokenizer = policy.Tokenizer ?? throw new PargsException($"{baseModelPath}: no tokenizer found (PPO needs one to read the prompts)");
        var prompts = trainPrompts.Select(p => tokenizer.Encode(p, addBos: true)).ToList();
        if (prompts.Count == 0) throw new PargsException($"{dir}: PPO has no train prompts");
        if (budget.BatchSize % ppo.MiniBatches != 0)
            throw new PargsException($"PPO: the rollout batch ({budget.BatchSize} prompts) must split into {ppo.MiniBatches} equal mini-batches");

        int optimizerSteps = budget.MaxSteps ?? (int)Math.Ceiling((double)budget.Epochs * trainPairs / budget.BatchSize);
        int stepsPerUpdate = ppo.PpoEpochs * ppo.MiniBatches;
        int updates = Math.Max(1, (int)Math.Ceiling(optimizerSteps / (double)stepsPerUpdate));
        // One mini-batch is one micro-batch: the rollout batch of an update is batch size × mini-batches (TRL's local batch).
        var loop = budget.ToLoop(Path.Combine(dir, "logs")) with
        {
            BatchSize = budget.BatchSize / ppo.MiniBatches, GradientAccumulation = ppo.MiniBatches, MaxSteps = updates, LogEvery = 1,
        };
        var options = (ppo with { ValueHeadSeed = budget.Seed, Loop = loop }).Validate();
        var trainer = new PpoTrainer(policy, new RewardModelPpoScorer(fullRewardModel, policy.Info), prompts, options, reference);
        var result = trainer.Train(progress is null ? null : new InlineProgress<TrainingProgress>(p =>
            progress.Report((p.Step, p.TotalSteps, $"training PPO (β = {options.KlCoef:0.###}): loss {p.Loss:0.000}"))));
        trainer.SavePolicy(Path.Combine(dir, PolicyFolder));

        var summary = new Dictionary<string, double>
        {
            ["updates"] = result.Steps, ["optimizer_steps"] = result.Steps * stepsPerUpdate, ["episodes"] = result.Steps * options.RolloutBatch,
            ["train_prompts"] = prompts.Count, ["kl_coef"] = options.KlCoef,
        };
        // The first and the last few updates' rollouts: how far the RM's score rose and at what KL to the base LM.
        var history = result.LogHistory.Where(r => r.ContainsKey("objective/scores")).ToList();
        if (history.Count > 0)
        {
            int window = Math.Min(5, history.Count);
            double Mean(IEnumerable<IReadOnlyDictionary<string, double>> rows, string key) => Math.Round(rows.Average(r => r[key]), 4);
            summary["first_scores"] = Mean(history.Take(window), "objective/scores");
            summary["last_scores"] = Mean(history.TakeLast(window), "objective/scores");
            summary["last_kl"] = Mean(history.TakeLast(window), "objective/kl");
        }
        var files = Directory.GetFiles(Path.Combine(dir, PolicyFolder)).Select(f => Path.Combine(PolicyFolder, Path.GetFileName(f))).ToList();
        return (files, summary);
    }
}
