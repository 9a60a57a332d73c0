using System.CommandLine;
using Pargs.Checkpoints;

namespace Pargs.Cli.Commands;

/// <summary>
/// Hidden `pargs reference-checkpoint NAME --out DIR`: writes one of the tiny seeded Hugging Face checkpoints
/// (<see cref="ReferenceCheckpoints"/>) that tools/llamacpp-reference converts and evaluates in llama.cpp.
/// </summary>
public static class ReferenceCheckpointCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("NAME") { Description = $"One of {string.Join(", ", ReferenceCheckpoints.Names.Concat(ReferenceCheckpoints.Shapes.Keys))}" };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write (replaced if it exists)", Required = true };
        var command = new Command("reference-checkpoint", "Write a tiny seeded reference checkpoint (for tools/llamacpp-reference).") { name, output };
        command.Hidden = true;
        command.SetAction(CliErrors.Action(result =>
        {
            ReferenceCheckpoints.Write(result.GetValue(name)!, result.GetValue(output)!);
            return 0;
        }));
        return command;
    }
}
