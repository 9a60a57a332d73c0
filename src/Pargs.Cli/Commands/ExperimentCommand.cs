using System.CommandLine;
using Pargs.Experiments;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs experiment --config FILE`: the demo's pipeline (data → full/partial reward models → DPO → PPO → generation →
/// evaluation, each cached) on your own LM, preference data and judge, described by a JSON config
/// (<see cref="ExperimentConfig"/>; every section optional). Writes report.md into the work folder.
/// </summary>
public static class ExperimentCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config", "-c") { Description = "JSON config (see data/experiments/*.json and docs/hh-rlhf.md)", Required = true };
        var work = new Option<string>("--work") { Description = "Work folder (overrides the config's \"work\")" };
        var fresh = new Option<bool>("--fresh") { Description = "Delete the stages' cached outputs first and start over" };

        var command = new Command("experiment", "Run the demo's pipeline on your own model, preference data and judge, from a JSON config.")
        {
            config, work, fresh,
        };
        command.SetAction(CliErrors.Action(result =>
        {
            var options = ExperimentConfig.Load(result.GetValue(config)!);
            if (result.GetValue(work) is { } dir) options = options with { WorkDir = CliErrors.OutputFolder(dir, "--work") };
            if (options.Threads is { } threads) ModelOptions.SetThreads(threads);
            string commandLine = "pargs " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
            string last = "";
            var outcome = new ExperimentPipeline(options).Run(new InlineProgress<DemoProgress>(p =>
            {
                // One line per stage event and per changed message (no progress bars: runs are often logged to files).
                string line = $"{p.Stage}: {p.Message}";
                if (line == last) return;
                if (p.Total > 1 && p.Done % Math.Max(1, p.Total / 10) != 0 && p.Done != p.Total) return;
                last = line;
                Console.Error.WriteLine(p.Total > 1 ? $"{line} ({p.Done}/{p.Total})" : line);
            }), fresh: result.GetValue(fresh), commandLine: commandLine);
            foreach (var stage in outcome.Stages)
                AnsiConsole.MarkupLine(Markup.Escape($"{stage.Stage,-14} {(stage.Skipped ? "cached" : "ran   ")} {stage.Seconds,7:0.0} s  {stage.Dir}"));
            AnsiConsole.MarkupLine($"report: [bold]{Markup.Escape(outcome.ReportPath)}[/] ({outcome.Seconds:0.0} s)");
            return 0;
        }));
        return command;
    }
}
