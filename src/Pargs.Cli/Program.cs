using System.CommandLine;
using System.CommandLine.Parsing;
using Pargs.Cli;
using Pargs.Cli.Commands;

// `pargs`: one subcommand per job. Each command lives in Commands/ and is added here.
var root = new RootCommand("Pargs: reward-guided text generation (PARGS, ARGS, Best-of-N, …) on CPU.");
// System.CommandLine names the root command after the executable, which is Pargs.Cli (the assembly cannot be named
// pargs, see docs/architecture.md); users type `pargs` (the .NET tool's command), so help and usage say that.
typeof(Symbol).GetField("<Name>k__BackingField", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)?.SetValue(root, "pargs");
foreach (var command in CommandCatalog.All())
    root.Subcommands.Add(command);
var parsed = root.Parse(args);
// A value that does not parse (-w abc, an unknown option) is one line, like every other bad input, with a
// pointer to the command's help rather than the whole help page (System.CommandLine's default).
if (parsed.Errors.Count > 0 && args.Length > 0)
{
    foreach (var error in parsed.Errors) Console.Error.WriteLine($"error: {CliErrors.InUserTerms(error.Message)}");
    var path = new List<string>();
    for (SymbolResult? r = parsed.CommandResult; r is CommandResult { Command: not RootCommand } c; r = c.Parent) path.Insert(0, c.Command.Name);
    Console.Error.WriteLine($"(see: pargs {string.Join(' ', path.Append("--help"))})");
    return 1;
}
return CliErrors.Run(() => parsed.Invoke());
