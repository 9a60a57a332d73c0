using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Evaluation;
using Pargs.Rewards;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs eval-rm`: preference accuracy of one or more reward models on held-out pairs — on whole responses and
/// on every prefix, by prefix length and by fraction of the response, side by side (the PARGS paper's comparison
/// of full- and partial-sequence reward models). Writes eval_rm.json and the plots accuracy_by_prefix.png/.svg and
/// accuracy_by_prefix_fraction.png/.svg (one line per reward model) into --out.
/// </summary>
public static class EvalRmCommand
{
    public const string OutputFile = "eval_rm.json";
    public const string PrefixLengthPlot = "accuracy_by_prefix";
    public const string PrefixFractionPlot = "accuracy_by_prefix_fraction";

    public static Command Create()
    {
        var rewardModels = new Option<string[]>("--reward-model", "-r") { Description = "Reward model folder (repeat to compare several)", Required = true };
        var data = new Option<string>("--data") { Description = "Preference pairs (JSONL / .jsonl.gz)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder for eval_rm.json", Required = true };
        var template = new Option<string>("--template") { Description = "Prompt template: plain | hh | chatml", DefaultValueFactory = _ => "plain" };
        var maxLength = new Option<int>("--max-length") { Description = "Pairs whose prompt + response is longer are dropped", DefaultValueFactory = _ => 512 };
        var batchSize = new Option<int>("--batch-size") { Description = "Pairs per forward", DefaultValueFactory = _ => 16 };
        var threads = ModelOptions.Threads(byDefault: 2);
        var onBadRow = DataOptions.OnBadRow();

        var command = new Command("eval-rm", "Accuracy of reward models on preference pairs, overall and by prefix length.")
        {
            rewardModels, data, output, template, maxLength, batchSize, threads, onBadRow,
        };
        command.SetAction(CliErrors.Action(result =>
        {
            ModelOptions.SetThreads(result.GetValue(threads));
            var paths = result.GetValue(rewardModels)!;
            string dataPath = result.GetValue(data)!;
            string outDir = CliErrors.OutputFolder(result.GetValue(output)!);
            if (result.GetValue(batchSize) < 1) throw new PargsException($"--batch-size must be at least 1, got {result.GetValue(batchSize)}");
            var evaluations = new List<(string Path, RewardModel Model, RewardEvaluation Result)>();
            foreach (var path in paths)
            {
                var rm = RewardModelFiles.Load(path);
                var pairs = RewardData.Load(dataPath, rm.Tokenizer!, result.GetValue(template)!, Math.Min(result.GetValue(maxLength), rm.Config.MaxPositions), finalOnly: false,
                    DataOptions.ParseOnBadRow(result.GetValue(onBadRow)));
                var evaluation = RewardEvaluator.Evaluate(rm, pairs, result.GetValue(batchSize));
                if (!double.IsFinite(evaluation.MeanMargin))
                    throw new PargsException($"{path}: the reward model gives non-finite rewards (mean margin {evaluation.MeanMargin}); check its weights");
                evaluations.Add((path, rm, evaluation));
            }

            var table = new Table().AddColumn("accuracy");
            foreach (var (path, rm, _) in evaluations)
                table.AddColumn(new TableColumn(Markup.Escape($"{Path.GetFileName(Path.TrimEndingDirectorySeparator(path))} ({rm.Objective?.ToConfigValue() ?? "?"})")).RightAligned());
            static string Cell(double value, int n) => n == 0 ? "–" : $"{value:F3}";
            table.AddRow(new[] { "whole responses" }.Concat(evaluations.Select(e => Cell(e.Result.Accuracy, e.Result.Pairs))).ToArray());
            table.AddRow(new[] { "mean margin" }.Concat(evaluations.Select(e => $"{e.Result.MeanMargin:F3}")).ToArray());
            for (int b = 0; b < PrefixBuckets.LengthLabels.Count; b++)
                table.AddRow(new[] { $"prefix {PrefixBuckets.LengthLabels[b]} tokens" }
                    .Concat(evaluations.Select(e => Cell(e.Result.ByPrefixLength[b].Accuracy, e.Result.ByPrefixLength[b].Comparisons))).ToArray());
            for (int b = 0; b < PrefixBuckets.FractionLabels.Count; b++)
                table.AddRow(new[] { $"prefix {PrefixBuckets.FractionLabels[b]} of response" }
                    .Concat(evaluations.Select(e => Cell(e.Result.ByPrefixFraction[b].Accuracy, e.Result.ByPrefixFraction[b].Comparisons))).ToArray());
            AnsiConsole.Write(table);

            Directory.CreateDirectory(outDir);
            var json = new JsonObject
            {
                ["data"] = dataPath,
                ["reward_models"] = new JsonArray(evaluations.Select(e => (JsonNode)ToJson(e.Path, e.Model, e.Result)).ToArray()),
            };
            string file = Path.Combine(outDir, OutputFile);
            Pargs.IO.AtomicFile.WriteAllText(file, json.ToJsonString(new JsonSerializerOptions
            {
                WriteIndented = true,
                // A broken model's NaN accuracy or margin is written as "NaN" (a JSON number cannot hold it) rather than lost with the file.
                NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
            }));
            CliErrors.Info($"written {file}");
            foreach (var plot in WritePlots(outDir, evaluations))
                CliErrors.Info($"written {plot}");
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// Accuracy against prefix length (x = first length of each doubling bucket: 1, 2, 3, 5, 9, 17, 33) and against
    /// the fraction of the response (x = middle of each quarter), one line per reward model; empty buckets are left out.
    /// </summary>
    static IEnumerable<string> WritePlots(string outDir, IReadOnlyList<(string Path, RewardModel Model, RewardEvaluation Result)> evaluations)
    {
        var byLength = new Dictionary<string, IReadOnlyList<PrefixAccuracyPoint>>();
        var byFraction = new Dictionary<string, IReadOnlyList<PrefixAccuracyPoint>>();
        for (int i = 0; i < evaluations.Count; i++)
        {
            var (path, rm, e) = evaluations[i];
            string name = $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(path))} ({rm.Objective?.ToConfigValue() ?? "?"})";
            if (byLength.ContainsKey(name)) name += $" #{i + 1}"; // two folders with the same name still get two lines
            static double Accuracy(BucketAccuracy b) => b.Comparisons == 0 ? double.NaN : b.Accuracy;
            byLength[name] = e.ByPrefixLength.Select((b, k) => new PrefixAccuracyPoint(BucketStart(PrefixBuckets.LengthLabels[k]), Accuracy(b))).ToList();
            byFraction[name] = e.ByPrefixFraction.Select((b, k) => new PrefixAccuracyPoint(25.0 * k + 12.5, Accuracy(b))).ToList();
        }
        var (lengthPng, lengthSvg) = Plots.PrefixAccuracy(Path.Combine(outDir, PrefixLengthPlot), byLength, "prefix length (tokens, start of bucket)");
        var (fractionPng, fractionSvg) = Plots.PrefixAccuracy(Path.Combine(outDir, PrefixFractionPlot), byFraction, "prefix length (% of the response, middle of quarter)");
        return [lengthPng, lengthSvg, fractionPng, fractionSvg];
    }

    /// <summary>"1" → 1, "3-4" → 3, "33+" → 33.</summary>
    static double BucketStart(string label) => int.Parse(new string(label.TakeWhile(char.IsDigit).ToArray()));

    static JsonObject ToJson(string path, RewardModel rm, RewardEvaluation e)
    {
        static JsonObject Buckets(IEnumerable<BucketAccuracy> buckets)
        {
            var o = new JsonObject();
            foreach (var b in buckets)
                o[b.Bucket] = new JsonObject { ["accuracy"] = b.Comparisons == 0 ? null : b.Accuracy, ["comparisons"] = b.Comparisons };
            return o;
        }
        return new JsonObject
        {
            ["reward_model"] = path,
            ["objective"] = rm.Objective?.ToConfigValue(),
            ["pairs"] = e.Pairs,
            ["accuracy"] = e.Accuracy,
            ["margin"] = e.MeanMargin,
            ["mean_reward"] = e.MeanReward,
            ["accuracy_by_prefix"] = Buckets(e.ByPrefixLength),
            ["accuracy_by_prefix_fraction"] = Buckets(e.ByPrefixFraction),
        };
    }
}
