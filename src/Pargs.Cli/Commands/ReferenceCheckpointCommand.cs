using System.CommandLine;
using Pargs.Checkpoints;

namespace Pargs.Cli.Commands;

/// <summary>
/// `pargs reference-checkpoint NAME --out DIR`: writes one of the seeded checkpoints in the real format
/// (<see cref="ReferenceCheckpoints"/>): the tiny ones tools/llamacpp-reference converts and evaluates in llama.cpp, and
/// the real-size shapes (random weights) docs/benchmarks.md measures speed and memory on. Listed in `pargs --help`
/// because the benchmarks' commands start with it.
/// </summary>
public static class ReferenceCheckpointCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("NAME") { Description = $"One of {string.Join(", ", ReferenceCheckpoints.Names.Concat(ReferenceCheckpoints.Shapes.Keys))}" };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write (replaced if it exists); a .gguf file with --gguf-type", Required = true };
        var ggufType = new Option<string>("--gguf-type") { Description = "Write a GGUF of this type (f32, f16, bf16, q8_0, q4_0, q4_k) straight from the seeded weights, one tensor at a time (real-size shapes without their float32 copy)" };
        var rewardModel = new Option<bool>("--reward-model") { Description = "Write the family's …ForSequenceClassification (a seeded score head instead of lm_head)" };
        var command = new Command("reference-checkpoint", "Write a seeded checkpoint in the real format (random weights): the tiny references of the llama.cpp goldens, or a real model's shape for the benchmarks.") { name, output, ggufType, rewardModel };
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
