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
        var output = new Option<string>("--out", "-o") { Description = "Folder to write (replaced if it exists); a .gguf file with --gguf-type", Required = true };
        var ggufType = new Option<string>("--gguf-type") { Description = "Write a GGUF of this type (f32, f16, bf16, q8_0, q4_0, q4_k) straight from the seeded weights, one tensor at a time (real-size shapes without their float32 copy)" };
        var rewardModel = new Option<bool>("--reward-model") { Description = "Write the family's …ForSequenceClassification (a seeded score head instead of lm_head)" };
        var command = new Command("reference-checkpoint", "Write a tiny seeded reference checkpoint (for tools/llamacpp-reference).") { name, output, ggufType, rewardModel };
        command.Hidden = true;
        command.SetAction(CliErrors.Action(result =>
        {
            if (result.GetValue(ggufType) is { } type)
            {
                var summary = ReferenceCheckpoints.WriteGguf(result.GetValue(name)!, result.GetValue(output)!, GgufConverter.ParseType(type), result.GetValue(rewardModel));
                CliErrors.Info($"wrote {result.GetValue(output)}: {summary.Tensors} tensors, {summary.Bytes:N0} bytes");
                return 0;
            }
            ReferenceCheckpoints.Write(result.GetValue(name)!, result.GetValue(output)!, result.GetValue(rewardModel));
            return 0;
        }));
        return command;
    }
}
