using System.CommandLine;
using Pargs.Evaluation;
using Spectre.Console;

namespace Pargs.Cli.Commands;

/// <summary>`pargs merge`: the output files of `generate --shard 0/n … (n−1)/n` joined into the unsharded run's file.</summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("files") { Description = "The shards' generation files (any order)", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out", "-o") { Description = "The merged JSONL file", Required = true };
        var expect = new Option<int?>("--expect-rows") { Description = "Fail unless the merged file has this many rows (the prompt count: a missing last shard cannot be seen otherwise)" };
        var command = new Command("merge", "Join the outputs of `generate --shard i/n` into the file the unsharded run writes.") { files, output, expect };
        command.SetAction(CliErrors.Action(result =>
        {
            string outPath = result.GetValue(output)!;
            CliErrors.OutputFile(outPath);
            var inputs = result.GetValue(files)!;
            if (inputs.Any(f => Path.GetFullPath(f) == Path.GetFullPath(outPath))) throw new PargsException($"{outPath}: is also an input; write the merge to another file");
            var lines = GenerationMerge.Merge(inputs, result.GetValue(expect));
            Pargs.IO.AtomicFile.WriteAllLines(outPath, lines);
            AnsiConsole.MarkupLine($"merged {inputs.Length} files, {lines.Count} generations, into [bold]{Markup.Escape(outPath)}[/]");
            return 0;
        }));
        return command;
    }
}
