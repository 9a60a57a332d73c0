using System.CommandLine;
using Pargs.Checkpoints;

namespace Pargs.Cli.Commands;

/// <summary>`pargs convert MODEL --to gguf --out FILE [--type f32|f16|bf16]`: any checkpoint Pargs loads → a GGUF llama.cpp loads.</summary>
public static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Checkpoint to convert: a Hugging Face folder, a .gguf or a llama2.c .bin" };
        var to = new Option<string>("--to") { Description = "Output format (gguf)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output file; written to a temporary file beside it, then renamed", Required = true };
        var type = new Option<string>("--type") { Description = "Tensor type of matrices: f32, f16, bf16, q8_0 or q4_0 (norms and biases stay f32; a quantized file keeps the output head in q8_0/q6_K, as llama-quantize does)", DefaultValueFactory = _ => "f32" };
        var command = new Command("convert", "Convert a checkpoint to GGUF for llama.cpp (llama, mistral, qwen2, qwen3, gpt2, gemma2, gemma3, phi3, gpt_neox).") { model, to, output, type };
        command.SetAction(CliErrors.Action(result =>
        {
            string format = result.GetValue(to)!;
            if (!format.Equals("gguf", StringComparison.OrdinalIgnoreCase))
                throw new PargsException($"--to {format}: pargs convert writes gguf only");
            var tensorType = GgufConverter.ParseType(result.GetValue(type)!);
            string outPath = result.GetValue(output)!;
            var summary = GgufConverter.Convert(result.GetValue(model)!, outPath, tensorType);
            foreach (var note in summary.Notes) Console.Error.WriteLine($"note: {note}");
            Console.WriteLine($"wrote {outPath}: GGUF v3, architecture {summary.Architecture}, {summary.Tensors} tensors, {tensorType.ToString().ToLowerInvariant()}, {summary.Bytes:N0} bytes");
            return 0;
        }));
        return command;
    }
}
