using Pargs.Models;
using Pargs.Training;

namespace Pargs.Experiments;

/// <summary>
/// The DPO stage of the demo and of `pargs experiment`: the paper's offline baseline. The policy starts from the
/// base LM (which is also the frozen reference), sees the same train pairs with the same <see cref="TrainingBudget"/>
/// as the reward models, and is saved as a Hugging Face causal-LM folder <c>policy/</c>; the generate stage then
/// samples from it with top-k (method "dpo"). Logs: <c>logs/metrics.jsonl</c>. When eval pairs are given, the
/// summary has the held-out DPO loss and the implicit reward's accuracy (rewards/accuracies) on them.
/// </summary>
public static class DpoStage
{
    public const string PolicyFolder = "policy";

    public static (IReadOnlyList<string>, Dictionary<string, double>) Run(string dir, string baseModelPath, string? tokenizerPath,
        string trainPath, string? evalPath, double beta, TrainingBudget budget, IProgress<(int Done, int Total, string Message)>? progress)
    {
        using var policy = CausalLM.Load(baseModelPath, tokenizerPath);
        var tokenizer = policy.Tokenizer ?? throw new PargsException($"{baseModelPath}: no tokenizer found (DPO needs one to read the pairs)");
        // One token of room for the EOS the trainer appends to every response.
        int maxLength = policy.Config.MaxPositions - 1;
        var train = PairFiles.Tokenize(trainPath, tokenizer, maxLength, finalOnly: true);
        var eval = evalPath is null ? null : PairFiles.Tokenize(evalPath, tokenizer, maxLength, finalOnly: true);
        var options = new DpoTrainingOptions { Beta = beta, Loop = budget.ToLoop(Path.Combine(dir, "logs")) }.Validate();
        var trainer = new DpoTrainer(policy, train, eval, options);
        var result = trainer.Train(progress is null ? null : new InlineProgress<TrainingProgress>(p =>
            progress.Report((p.Step, p.TotalSteps, $"training DPO (β = {beta:0.###}): loss {p.Loss:0.000}"))));
        trainer.SavePolicy(Path.Combine(dir, PolicyFolder));

        var summary = new Dictionary<string, double> { ["steps"] = result.Steps, ["train_pairs"] = train.Count, ["beta"] = beta };
        if (result.LogHistory.LastOrDefault(r => r.ContainsKey("loss")) is { } last)
            summary["train_loss"] = Math.Round(last["loss"], 4);
        if (eval is not null && trainer.Evaluate() is { } metrics)
        {
            summary["eval_pairs"] = eval.Count;
            foreach (var key in new[] { "loss", "rewards/accuracies", "rewards/margins" })
                if (metrics.TryGetValue(key, out var value)) summary["eval_" + key.Replace("rewards/", "reward_")] = Math.Round(value, 4);
        }
        var files = Directory.GetFiles(Path.Combine(dir, PolicyFolder)).Select(f => Path.Combine(PolicyFolder, Path.GetFileName(f))).ToList();
        return (files, summary);
    }
}
