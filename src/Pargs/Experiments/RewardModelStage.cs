using System.Globalization;
using System.Text;
using System.Text.Json;
using Pargs.Checkpoints;
using Pargs.Data;
using Pargs.Evaluation;
using Pargs.Rewards;
using Pargs.Tokenizers;
using Pargs.Training;

namespace Pargs.Experiments;

/// <summary>
/// The reward-models stage of the demo and of `pargs experiment`: the reward models of the paper's comparison,
/// each initialised from the base LM's weights plus a score head and trained with the same pairs and
/// <see cref="TrainingBudget"/> — only the objective differs: <c>full/</c> sees whole responses, <c>partial/</c>
/// every prefix. Each is evaluated on the held-out pairs at every prefix length: <c>prefix-accuracy.json</c>
/// (the evaluator's buckets and per-length accuracy), <c>prefix-accuracy.md</c> and the plot
/// <c>prefix-accuracy.png/svg</c>. Training logs go to <c>logs/&lt;objective&gt;/metrics.jsonl</c>.
/// <para>The vocabulary-head objectives (farma, genarm: FaRMA's and GenARM's reward models) are trained here too, from
/// the base LM with its head (as both papers initialise theirs), on the same whole-response pairs and budget
/// (<see cref="VocabularyRewardTrainer"/>); their summary has the trainer's held-out accuracy and loss (they have
/// no scalar prefix score, so no prefix-accuracy column).</para>
/// </summary>
public static class RewardModelStage
{
    /// <param name="maxLength">Longest prompt + response kept (the pair files are already filtered; this guards the context).</param>
    public static (IReadOnlyList<string>, Dictionary<string, double>) Run(string dir, string baseModelPath, string? tokenizerPath,
        string trainPath, string evalPath, int maxLength, IReadOnlyList<RewardObjective> objectives, TrainingBudget budget,
        IProgress<(int Done, int Total, string Message)>? progress)
    {
        var summary = new Dictionary<string, double>();
        var evaluations = new Dictionary<string, RewardEvaluation>();
        var byLength = new Dictionary<string, IReadOnlyList<PrefixAccuracyPoint>>();
        var files = new List<string>();
        IReadOnlyList<TokenizedPair>? evalPairs = null;
        foreach (var objective in objectives)
        {
            string name = objective.ToConfigValue();
            if (objective.HasVocabularyHead())
            {
                TrainVocabularyHead(dir, baseModelPath, tokenizerPath, trainPath, evalPath, maxLength, objective, budget, progress, summary);
                files.AddRange([$"{name}/config.json", $"{name}/model.safetensors"]);
                continue;
            }
            RewardModel rm;
            using (var contents = CheckpointLoader.Load(baseModelPath))
            {
                rm = RewardModel.FromCausalLM(contents, budget.Seed);
                rm.Tokenizer = TokenizerLoader.ForCheckpoint(contents, tokenizerPath);
            }
            using var _ = rm;
            rm.Objective = objective;
            int length = Math.Min(maxLength, rm.Config.MaxPositions);
            var tokenizer = rm.Tokenizer!;
            evalPairs ??= PairFiles.Tokenize(evalPath, tokenizer, length, finalOnly: false);
            var train = PairFiles.Tokenize(trainPath, tokenizer, length, finalOnly: objective == RewardObjective.Full);
            var options = new RewardTrainingOptions { Objective = objective, MaxLength = length, Loop = budget.ToLoop(Path.Combine(dir, "logs", name)) };
            var trained = new RewardTrainer(rm, train, null, options).Train(progress is null ? null : new InlineProgress<TrainingProgress>(p =>
                progress.Report((p.Step, p.TotalSteps, $"training {name}: loss {p.Loss:0.000}"))));
            rm.Save(Path.Combine(dir, name), objective);
            files.AddRange([$"{name}/config.json", $"{name}/model.safetensors"]);

            progress?.Report((0, 1, $"evaluating {name} on {evalPairs.Count} pairs"));
            var evaluation = RewardEvaluator.Evaluate(rm, evalPairs);
            evaluations[name] = evaluation;
            byLength[name] = AccuracyByLength(rm, evalPairs);
            summary[$"{name}_steps"] = trained.Steps;
            summary[$"{name}_accuracy"] = Math.Round(evaluation.Accuracy, 4);
            summary[$"{name}_accuracy_prefix_1_4"] = Math.Round(RewardEvaluator.PrefixAccuracy(rm, evalPairs, p => Enumerable.Range(1, Math.Min(4, p.ResponseLength))), 4);
            summary["train_pairs"] = train.Count;
        }
        if (evalPairs is not null) summary["eval_pairs"] = evalPairs.Count;
        if (evaluations.Count == 0) return (files, summary);

        WriteText(Path.Combine(dir, "prefix-accuracy.json"), JsonSerializer.Serialize(new
        {
            models = evaluations.ToDictionary(kv => kv.Key, kv => new
            {
                pairs = kv.Value.Pairs, accuracy = kv.Value.Accuracy, margin = kv.Value.MeanMargin,
                by_prefix_length = kv.Value.ByPrefixLength.Select(b => new { bucket = b.Bucket, comparisons = b.Comparisons, accuracy = Finite(b.Accuracy) }),
                by_prefix_fraction = kv.Value.ByPrefixFraction.Select(b => new { bucket = b.Bucket, comparisons = b.Comparisons, accuracy = Finite(b.Accuracy) }),
                by_exact_length = byLength[kv.Key].Select(p => new { prefix = (int)p.PrefixLength, accuracy = p.Accuracy }),
            }),
        }, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        WriteText(Path.Combine(dir, "prefix-accuracy.md"), PrefixTable(evaluations));
        var plot = Plots.PrefixAccuracy(Path.Combine(dir, "prefix-accuracy"), byLength);
        files.AddRange(["prefix-accuracy.json", "prefix-accuracy.md", Path.GetFileName(plot.Png), Path.GetFileName(plot.Svg)]);
        return (files, summary);
    }

    static void TrainVocabularyHead(string dir, string baseModelPath, string? tokenizerPath, string trainPath, string evalPath, int maxLength,
        RewardObjective objective, TrainingBudget budget, IProgress<(int Done, int Total, string Message)>? progress, Dictionary<string, double> summary)
    {
        string name = objective.ToConfigValue();
        VocabularyRewardModel rm;
        using (var contents = CheckpointLoader.Load(baseModelPath))
        {
            rm = VocabularyRewardModel.FromCausalLM(contents, objective);
            rm.Model.Tokenizer = TokenizerLoader.ForCheckpoint(contents, tokenizerPath);
        }
        using var _ = rm;
        int length = Math.Min(maxLength, rm.Config.MaxPositions - 1); // one EOS after the response, as train-rm leaves room for
        var tokenizer = rm.Tokenizer!;
        var train = PairFiles.Tokenize(trainPath, tokenizer, length, finalOnly: true);
        var eval = PairFiles.Tokenize(evalPath, tokenizer, length, finalOnly: true);
        var options = new VocabularyRewardTrainingOptions { Objective = objective, MaxLength = length, Loop = budget.ToLoop(Path.Combine(dir, "logs", name)) }.Validate();
        var trainer = new VocabularyRewardTrainer(rm, train, eval, options);
        var trained = trainer.Train(progress is null ? null : new InlineProgress<TrainingProgress>(p =>
            progress.Report((p.Step, p.TotalSteps, $"training {name}: loss {p.Loss:0.000}"))));
        rm.Save(Path.Combine(dir, name));
        summary[$"{name}_steps"] = trained.Steps;
        progress?.Report((0, 1, $"evaluating {name} on {eval.Count} pairs"));
        if (trainer.Evaluate() is { } metrics)
        {
            summary[$"{name}_accuracy"] = Math.Round(metrics["accuracy"], 4);
            summary[$"{name}_eval_loss"] = Math.Round(metrics["loss"], 4);
        }
        summary["train_pairs"] = train.Count;
        summary["eval_pairs"] = eval.Count;
    }

    /// <summary>
    /// Accuracy at each exact prefix length i (over the pairs whose padded response has at least i tokens; ties count
    /// half), from one forward per side: a causal reward model scores every prefix of a sequence at once.
    /// </summary>
    static IReadOnlyList<PrefixAccuracyPoint> AccuracyByLength(RewardModel rm, IReadOnlyList<TokenizedPair> pairs)
    {
        int longest = pairs.Max(p => p.ResponseLength);
        var score = new double[longest + 1];
        var count = new int[longest + 1];
        using (TorchSharp.torch.no_grad())
            foreach (var batch in pairs.OrderBy(p => p.SequenceLength).Chunk(16))
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                var prefixBatch = RewardPairBatch.Build(batch, pair => Enumerable.Range(1, pair.ResponseLength));
                var (chosen, rejected) = prefixBatch.Rewards(rm);
                var w = chosen.to(TorchSharp.torch.ScalarType.Float64).data<double>().ToArray();
                var l = rejected.to(TorchSharp.torch.ScalarType.Float64).data<double>().ToArray();
                var prefix = prefixBatch.PrefixLengths.data<long>().ToArray();
                for (int n = 0; n < w.Length; n++)
                {
                    score[prefix[n]] += w[n] > l[n] ? 1.0 : w[n] == l[n] ? 0.5 : 0.0;
                    count[prefix[n]]++;
                }
            }
        var points = new List<PrefixAccuracyPoint>();
        for (int i = 1; i <= longest && count[i] >= Math.Max(1, pairs.Count / 4); i++) // stop when too few pairs are left for a meaningful point
            points.Add(new PrefixAccuracyPoint(i, score[i] / count[i]));
        return points;
    }

    static string PrefixTable(IReadOnlyDictionary<string, RewardEvaluation> evaluations)
    {
        var inv = CultureInfo.InvariantCulture;
        var names = evaluations.Keys.ToList();
        var sb = new StringBuilder("| prefix length | comparisons | " + string.Join(" | ", names) + " |\n|---|---:|" + string.Concat(names.Select(_ => "---:|")) + "\n");
        var first = evaluations[names[0]];
        for (int b = 0; b < first.ByPrefixLength.Count; b++)
        {
            if (first.ByPrefixLength[b].Comparisons == 0) continue;
            sb.Append("| ").Append(first.ByPrefixLength[b].Bucket).Append(" | ").Append(first.ByPrefixLength[b].Comparisons);
            foreach (var n in names) sb.Append(" | ").Append(evaluations[n].ByPrefixLength[b].Accuracy.ToString("0.000", inv));
            sb.Append(" |\n");
        }
        sb.Append("| whole response | ").Append(first.Pairs);
        foreach (var n in names) sb.Append(" | ").Append(evaluations[n].Accuracy.ToString("0.000", inv));
        return sb.Append(" |\n").ToString();
    }

    static double? Finite(double x) => double.IsFinite(x) ? x : null;

    internal static void WriteText(string path, string text)
    {
        Pargs.IO.AtomicFile.WriteAllText(path, text);
    }
}
