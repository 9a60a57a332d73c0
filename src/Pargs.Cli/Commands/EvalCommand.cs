using System.CommandLine;
using Pargs.Decoding;
using Pargs.Evaluation;
using Pargs.Experiments;
using Pargs.Rewards.Gold;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs eval`: the demo's evaluation stage on any generation files (JSONL as `pargs generate` writes them):
/// gold reward (VADER positive sentiment by default), win/tie/loss against a baseline method, diversity, and —
/// with the base LM — coherence and perplexity; writes table.md, report.json, scored generations and plots.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var generations = new Option<string[]>("--generations", "-g") { Description = "Generation JSONL files (one or more)", AllowMultipleArgumentsPerToken = true };
        var shard = new Option<string>("--shard") { Description = "i/n: score only the i-th of n slices of the records (gold reward, perplexity, coherence) into --out, for an evaluation spread over n machines; `eval --join` makes the table" };
        var join = new Option<string[]>("--join") { Description = "The n folders `eval --shard i/n` wrote: build the table from their scores (no model is loaded); the same files as one unsharded eval", AllowMultipleArgumentsPerToken = true };
        var baseline = new Option<string>("--baseline") { Description = "Method every row is compared with (win/tie/loss); \"none\" for no comparison", DefaultValueFactory = _ => "topk" };
        var output = new Option<string>("--out", "-o") { Description = "Folder for table.md, report.json, generations.scored.jsonl and plots", Required = true };
        var reward = new Option<string>("--reward") { Description = "Gold reward: vader-positive | vader-negative", DefaultValueFactory = _ => "vader-positive" };
        var rewardModel = new Option<string>("--reward-model") { Description = "Gold reward from a reward-model folder instead (an encoder classifier or a causal RM; not the one that guided the generations)" };
        var rewardLabel = RewardModelFiles.RewardLabelOption();
        var model = ModelOptions.Model("Base LM for perplexity and coherence (default: the shipped stories260K)");
        var tokenizer = ModelOptions.Tokenizer();
        var noModel = new Option<bool>("--no-model") { Description = "Skip perplexity and coherence (no base LM needed)" };
        var threads = ModelOptions.Threads();

        var command = new Command("eval", "Evaluate generation files with a held-out gold reward: table, JSON and plots.")
        {
            generations, baseline, output, reward, rewardModel, rewardLabel, model, tokenizer, noModel, threads, shard, join,
        };
        command.SetAction(CliErrors.Action(result =>
        {
            ModelOptions.SetThreads(result.GetValue(threads));
            string? baselineName = result.GetValue(baseline) is { } b && b != "none" ? b : null;
            if (result.GetValue(join) is { Length: > 0 } shardFolders)
            {
                if (result.GetValue(generations) is { Length: > 0 } || result.GetValue(shard) is not null || result.GetValue(rewardModel) is not null
                    || result.GetResult(reward) is { Implicit: false } || result.GetValue(model) is not null)
                    throw new PargsException("--join builds the table from the shards' scores: give it with --out and --baseline only");
                var (scored, goldName) = EvaluationShards.Join(shardFolders);
                string joinDir = CliErrors.OutputFolder(result.GetValue(output)!);
                var joined = GenerationEvaluator.Report(scored, goldName, baselineName, joinDir);
                Console.WriteLine(ReportWriter.ToMarkdown(joined.Rows, baselineName));
                AnsiConsole.MarkupLine($"joined {shardFolders.Length} shards ({scored.Count} generations) into [bold]{Markup.Escape(joinDir)}[/]");
                return 0;
            }
            var files = result.GetValue(generations) is { Length: > 0 } given ? given : throw new PargsException("give the generation files (-g FILE…), or --join with the folders of a sharded evaluation");
            if (files.GroupBy(Path.GetFullPath).FirstOrDefault(g => g.Count() > 1) is { } twice)
                throw new PargsException($"-g {twice.First()}: given twice (its generations would count double)");
            var records = files.SelectMany(GenerationJsonl.Read).ToList();
            var lexicon = VaderLexicon.LoadDefault();
            if (result.GetValue(rewardModel) is not null && result.GetResult(reward) is { Implicit: false })
                throw new PargsException("give --reward or --reward-model, not both");
            if (result.GetValue(rewardModel) is null && result.GetValue(rewardLabel) is not null) throw new PargsException("--reward-label needs --reward-model");
            using var judge = result.GetValue(rewardModel) is { } judgePath ? GoldRewards.FromFolder(judgePath, result.GetValue(rewardLabel)) as IDisposable : null;
            IGoldReward gold = judge is IGoldReward judgeReward ? judgeReward : result.GetValue(reward)!.Trim().ToLowerInvariant() switch
            {
                "vader-positive" => LexiconSentiment.Positive(lexicon),
                "vader-negative" => LexiconSentiment.Negative(lexicon),
                var other => throw new PargsException($"--reward \"{other}\" is not known (expected vader-positive or vader-negative)"),
            };
            using var lm = result.GetValue(noModel) ? null : ModelOptions.LoadLanguageModel(result.GetValue(model), result.GetValue(tokenizer));
            var probe = lm is null ? null : new BaseLmProbe(lm);
            string outDir = CliErrors.OutputFolder(result.GetValue(output)!);
            if (result.GetValue(shard) is { } shardText)
            {
                var evalShard = PromptShard.Parse(shardText);
                (int Start, int Length) slice = default;
                AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"score shard {evalShard}", maxValue: Math.Max(1, evalShard.Slice(records.Count, 1).Length));
                        slice = EvaluationShards.WriteShard(records, evalShard, gold, probe, lm?.Source, outDir,
                            new InlineProgress<(int Done, int Total)>(p => task.Value = p.Done));
                    });
                AnsiConsole.MarkupLine(Markup.Escape($"scored records {slice.Start + 1}–{slice.Start + slice.Length} of {records.Count} (shard {evalShard}) into {outDir}; once all {evalShard.Count} are done: pargs eval --join DIR… --out DIR"));
                return 0;
            }

            EvaluationOutputs outputs = null!;
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("evaluate", maxValue: records.Count);
                    outputs = GenerationEvaluator.Run(records, gold, baselineName, probe, outDir,
                        new InlineProgress<(int Done, int Total)>(p => task.Value = p.Done));
                });
            Console.WriteLine(ReportWriter.ToMarkdown(outputs.Rows, baselineName));
            AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(outDir)}[/]: table.md, report.json, generations.scored.jsonl, reward-vs-w.png/svg, reward-vs-perplexity.png/svg");
            return 0;
        }));
        return command;
    }
}
