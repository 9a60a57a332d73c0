using System.CommandLine;
using Pargs.Cli;
using Pargs.Cli.Commands;

// `pargs`: one subcommand per job. Each command lives in Commands/ and is added here.
var root = new RootCommand("Pargs: reward-guided text generation (PARGS, ARGS, Best-of-N, …) on CPU.");
foreach (var command in CommandCatalog.All())
    root.Subcommands.Add(command);
return CliErrors.Run(() => root.Parse(args).Invoke());
