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
/// </summary>
public static class PpoStage
{
    public const string PolicyFolder = "policy";

    public static (IReadOnlyList<string>, Dictionary<string, double>) Run(string dir, string baseModelPath, string trainPromptsPath,
        string fullRewardModelDir, string trainPairsPath, double klCoef, int responseLength, TrainingBudget budget,
        IProgress<(int Done, int Total, string Message)>? progress)
    {
        using var policy = CausalLM.Load(baseModelPath);
        using var reference = CausalLM.Load(baseModelPath);
        using var rewardModel = RewardModel.Load(fullRewardModelDir);
        var tokenizer = policy.Tokenizer ?? throw new PargsException($"{baseModelPath}: no tokenizer found (PPO needs one to read the prompts)");
        var prompts = StoryPrompts.Read(trainPromptsPath).Select(p => tokenizer.Encode(p, addBos: true)).ToList();

        const int ppoEpochs = 4;
        int trainPairs = File.ReadLines(trainPairsPath).Count(line => !string.IsNullOrWhiteSpace(line));
        int dpoSteps = budget.MaxSteps ?? (int)Math.Ceiling((double)budget.Epochs * trainPairs / budget.BatchSize);
        int updates = Math.Max(1, (int)Math.Ceiling(dpoSteps / (double)ppoEpochs));
        var options = new PpoTrainingOptions
        {
            KlCoef = klCoef, PpoEpochs = ppoEpochs, Temperature = 1.0, ResponseLength = responseLength, ValueHeadSeed = budget.Seed,
            Loop = budget.ToLoop(Path.Combine(dir, "logs")) with { MaxSteps = updates, LogEvery = 1 },
        }.Validate();
        var trainer = new PpoTrainer(policy, new RewardModelPpoScorer(rewardModel, policy.Info), prompts, options, reference);
        var result = trainer.Train(progress is null ? null : new InlineProgress<TrainingProgress>(p =>
            progress.Report((p.Step, p.TotalSteps, $"training PPO (β = {klCoef:0.###}): loss {p.Loss:0.000}"))));
        trainer.SavePolicy(Path.Combine(dir, PolicyFolder));

        var summary = new Dictionary<string, double>
        {
            ["updates"] = result.Steps, ["optimizer_steps"] = result.Steps * ppoEpochs, ["episodes"] = result.Steps * options.RolloutBatch,
            ["train_prompts"] = prompts.Count, ["kl_coef"] = klCoef,
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
