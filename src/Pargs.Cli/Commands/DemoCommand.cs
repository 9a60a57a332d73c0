using System.CommandLine;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Experiments;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs demo`: the paper end to end on the shipped stories260K (DESIGN.md §6): prompts → gold-labelled pairs →
/// full, partial, FaRMA and GenARM reward models and a DPO policy → top-k / Best-of-N / ARGS / PARGS / PARGS-G /
/// FaRMA / FaRMA-G / GenARM / blockwise CD / CARDS / DPO →
/// gold-reward report (and a PPO policy against the full reward model, row "ppo"). Each stage is
/// cached in the work folder; a rerun skips finished stages.
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var work = new Option<string>("--work") { Description = "Work folder for every stage's artifacts and report.md", DefaultValueFactory = _ => Path.Combine("runs", "demo") };
        var quick = new Option<bool>("--quick") { Description = "A smaller run: fewer prompts, pairs, steps, weights and seeds (every method still runs)" };
        var fresh = new Option<bool>("--fresh") { Description = "Delete the stages' cached outputs first and start over" };
        var seed = new Option<int>("--seed") { Description = "Master seed (prompt split, pairs, labels, reward models, decoding)", DefaultValueFactory = _ => 1 };
        var methods = new Option<string>("--methods") { Description = "Comma-separated subset of topk,best-of-n,args,pargs,pargs-g,farma,farma-g,genarm,cd,cards,dpo,ppo (default: all)" };
        var check = new Option<string>("--check") { Description = "Compare the run's table with a published one (docs/results/seed1.json): rows identical to the printed digit or within the cross-machine tolerance (±0.03 reward, ±10 % perplexity), or as the file's run on another processor gave them; exit code 1 beyond it" };
        var threads = new Option<int>("--threads") { Description = "CPU threads for torch and Pargs' decode kernels (default 1, safe on a shared machine)", DefaultValueFactory = _ => 1 };

        var command = new Command("demo", "Reproduce the PARGS paper offline on stories260K: train full and partial reward models and a DPO policy from gold-labelled pairs, compare decoding methods, write a report.")
        {
            work, quick, fresh, seed, methods, threads, check,
        };
        command.SetAction(CliErrors.Action(result =>
        {
            ModelOptions.SetThreads(result.GetValue(threads));
            var options = new DemoOptions { WorkDir = CliErrors.OutputFolder(result.GetValue(work)!, "--work"), Seed = result.GetValue(seed), Threads = result.GetValue(threads) };
            if (result.GetValue(quick)) options = options.Quick();
            if (result.GetValue(methods) is { } list)
            {
                var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                bool dpo = names.Any(n => n.Equals(GenerationSweep.DpoMethod, StringComparison.OrdinalIgnoreCase));
                bool ppo = names.Any(n => n.Equals(GenerationSweep.PpoMethod, StringComparison.OrdinalIgnoreCase));
                options = options with
                {
                    Methods = names.Where(n => !n.Equals(GenerationSweep.DpoMethod, StringComparison.OrdinalIgnoreCase)
                                               && !n.Equals(GenerationSweep.PpoMethod, StringComparison.OrdinalIgnoreCase)).Select(DecodingMethods.Parse).ToList(),
                    Dpo = dpo, Ppo = ppo,
                };
            }
            var pipeline = new DemoPipeline(options);
            string commandLine = "pargs " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));

            DemoResult outcome = null!;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    foreach (var stage in options.Stages)
                    {
                        var task = ctx.AddTask(stage, autoStart: false, maxValue: 1);
                        tasks[stage] = task;
                    }
                    outcome = pipeline.Run(new InlineProgress<DemoProgress>(p =>
                    {
                        if (!tasks.TryGetValue(p.Stage, out var task)) return;
                        if (!task.IsStarted) task.StartTask();
                        task.MaxValue = Math.Max(1, p.Total);
                        task.Value = p.Done;
                        task.Description = Markup.Escape($"{p.Stage}: {p.Message}");
                        if (p.Message == "cached" || p.Message.StartsWith("done")) { task.Value = task.MaxValue; task.StopTask(); }
                    }), fresh: result.GetValue(fresh), commandLine: commandLine);
                });

            foreach (var stage in outcome.Stages)
                AnsiConsole.MarkupLine(Markup.Escape($"{stage.Stage,-14} {(stage.Skipped ? "cached" : "ran   ")} {stage.Seconds,7:0.0} s  {stage.Dir}"));
            Console.WriteLine();
            Console.WriteLine(outcome.Table);
            AnsiConsole.MarkupLine($"report: [bold]{Markup.Escape(outcome.ReportPath)}[/] ({outcome.Seconds:0.0} s)");
            if (result.GetValue(check) is { } published)
            {
                if (!File.Exists(published)) throw new PargsException($"--check {published}: file not found");
                var comparison = PublishedResults.Compare(File.ReadAllText(Path.Combine(options.WorkDir, "evaluate", "report.json")), File.ReadAllText(published), published);
                foreach (var row in comparison.WithinTolerance) CliErrors.Info("within tolerance: " + row);
                foreach (var row in comparison.OtherMachine) CliErrors.Info("as another machine published it: " + row);
                foreach (var row in comparison.Beyond) CliErrors.Info("DIFFERS: " + row);
                CliErrors.Info($"--check {published}: {comparison.Identical} row(s) identical to the printed digit, {comparison.WithinTolerance.Count} within the cross-machine tolerance " +
                    $"(±{PublishedResults.RewardTolerance} reward, ±{PublishedResults.PerplexityRelativeTolerance:P0} perplexity), " +
                    (comparison.OtherMachine.Count > 0 ? $"{comparison.OtherMachine.Count} as another processor's published run gave them, " : "") + $"{comparison.Beyond.Count} beyond it");
                return comparison.Reproduced ? 0 : 1;
            }
            return 0;
        }));
        return command;
    }
}
