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
/// Stage 3: the two reward models of the paper's comparison, trained with the same pairs, steps, batch, learning
/// rate and seed (score head and data order) — only the objective differs: <c>full/</c> sees whole responses,
/// <c>partial/</c> every prefix. Both are evaluated on the held-out pairs at every prefix length:
/// <c>prefix-accuracy.json</c> (the evaluator's buckets and per-length accuracy), <c>prefix-accuracy.md</c>
/// and the plot <c>prefix-accuracy.png/svg</c>. Training logs go to <c>logs/&lt;objective&gt;/metrics.jsonl</c>.
/// </summary>
public sealed partial class DemoPipeline
{
    RewardModel? fullRm, partialRm;

    (IReadOnlyList<string>, Dictionary<string, double>) RewardModelsStage(string dir, IProgress<DemoProgress>? progress)
    {
        var pairsDir = StageDir("pairs");
        var tokenizer = Lm.Tokenizer!;
        var summary = new Dictionary<string, double>();
        var evaluations = new Dictionary<string, RewardEvaluation>();
        var byLength = new Dictionary<string, IReadOnlyList<PrefixAccuracyPoint>>();
        var evalPairs = Tokenize(Path.Combine(pairsDir, "eval.jsonl"), tokenizer, finalOnly: false);
        foreach (var objective in new[] { RewardObjective.Full, RewardObjective.Partial })
        {
            string name = objective.ToConfigValue();
            var train = Tokenize(Path.Combine(pairsDir, "train.jsonl"), tokenizer, finalOnly: objective == RewardObjective.Full);
            RewardModel rm;
            using (var contents = CheckpointLoader.Load(modelPath))
            {
                rm = RewardModel.FromCausalLM(contents, o.Seed + 2);
                rm.Tokenizer = TokenizerLoader.ForCheckpoint(contents, null);
            }
            rm.Objective = objective;
            var options = new RewardTrainingOptions
            {
                Objective = objective,
                Loop = new TrainingOptions
                {
                    LearningRate = o.LearningRate, BatchSize = o.TrainBatchSize, Epochs = o.TrainEpochs, MaxSteps = o.TrainMaxSteps,
                    Seed = o.Seed + 2, Threads = o.Threads, OutputDir = Path.Combine(dir, "logs", name), LogEvery = 5,
                }.Validate(),
            };
            var trained = new RewardTrainer(rm, train, null, options).Train(progress is null ? null : new InlineProgress<TrainingProgress>(p =>
                progress.Report(new DemoProgress("reward-models", p.Step, p.TotalSteps, $"training {name}: loss {p.Loss:0.000}"))));
            rm.Save(Path.Combine(dir, name), objective);

            progress?.Report(new DemoProgress("reward-models", 0, 1, $"evaluating {name} on {evalPairs.Count} pairs"));
            var evaluation = RewardEvaluator.Evaluate(rm, evalPairs);
            evaluations[name] = evaluation;
            byLength[name] = AccuracyByLength(rm, evalPairs);
            summary[$"{name}_steps"] = trained.Steps;
            summary[$"{name}_accuracy"] = Math.Round(evaluation.Accuracy, 4);
            summary[$"{name}_accuracy_prefix_1_4"] = Math.Round(RewardEvaluator.PrefixAccuracy(rm, evalPairs, p => Enumerable.Range(1, Math.Min(4, p.ResponseLength))), 4);
            rm.Dispose();
        }
        summary["train_pairs"] = File.ReadLines(Path.Combine(pairsDir, "train.jsonl")).Count(l => l.Length > 0);
        summary["eval_pairs"] = evalPairs.Count;

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
        return ([
            "full/config.json", "full/model.safetensors", "partial/config.json", "partial/model.safetensors",
            "prefix-accuracy.json", "prefix-accuracy.md", Path.GetFileName(plot.Png), Path.GetFileName(plot.Svg),
        ], summary);
    }

    (IRewardModel? Full, IRewardModel? Partial) LoadRewardModels()
    {
        fullRm ??= RewardModel.Load(Path.Combine(StageDir("reward-models"), "full"));
        partialRm ??= RewardModel.Load(Path.Combine(StageDir("reward-models"), "partial"));
        return (fullRm, partialRm);
    }

    void DisposeRewardModels()
    {
        fullRm?.Dispose();
        partialRm?.Dispose();
        fullRm = partialRm = null;
    }

    IReadOnlyList<TokenizedPair> Tokenize(string path, ITokenizer tokenizer, bool finalOnly)
    {
        var read = PreferenceReader.Read(path);
        var options = new PairTokenizerOptions
        {
            MaxLength = Lm.Config.MaxPositions,
            PartialPairs = finalOnly ? new PartialPairOptions { Positions = new PrefixPositions.FinalOnly() } : new PartialPairOptions(),
        };
        var pairs = new PairTokenizer(tokenizer, options).Tokenize(read.Pairs, path).Pairs;
        if (pairs.Count == 0) throw new PargsException($"{path}: no usable preference pairs");
        return pairs;
    }

    /// <summary>Accuracy at each exact prefix length i (over the pairs whose padded response has at least i tokens).</summary>
    static IReadOnlyList<PrefixAccuracyPoint> AccuracyByLength(RewardModel rm, IReadOnlyList<TokenizedPair> pairs)
    {
        var points = new List<PrefixAccuracyPoint>();
        for (int i = 1; ; i++)
        {
            var long_ = pairs.Where(p => p.ResponseLength >= i).ToList();
            if (long_.Count < Math.Max(1, pairs.Count / 4)) break; // too few pairs left for a meaningful point
            points.Add(new PrefixAccuracyPoint(i, RewardEvaluator.PrefixAccuracy(rm, long_, _ => [i], batchSize: 64)));
        }
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

    static void WriteText(string path, string text)
    {
        File.WriteAllText(path + ".tmp", text, new UTF8Encoding(false));
        File.Move(path + ".tmp", path, overwrite: true);
    }
}
