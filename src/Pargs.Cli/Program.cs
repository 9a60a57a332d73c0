using System.CommandLine;
using Pargs.Cli;
using Pargs.Cli.Commands;

// `pargs`: one subcommand per job. Each command lives in Commands/ and is added here.
var root = new RootCommand("Pargs: reward-guided text generation (PARGS, ARGS, Best-of-N, …) on CPU.");
foreach (var command in CommandCatalog.All())
    root.Subcommands.Add(command);
var parsed = root.Parse(args);
// A value that does not parse (-w abc, an unknown option) is one line, like every other bad input, with a
// pointer to the help rather than the whole help page (System.CommandLine's default).
if (parsed.Errors.Count > 0 && args.Length > 0)
{
    foreach (var error in parsed.Errors) Console.Error.WriteLine($"error: {error.Message}");
    string command = string.Join(' ', parsed.CommandResult.Command is RootCommand ? [] : new[] { parsed.CommandResult.Command.Name });
    Console.Error.WriteLine($"(see: pargs {command}{(command.Length > 0 ? " " : "")}--help)");
    return 1;
}
return CliErrors.Run(() => parsed.Invoke());
