using System.CommandLine;
using Pargs.Models;
using TorchSharp;

namespace Pargs.Cli.Commands;

/// <summary>Options several commands share: which model, which tokenizer, how many threads.</summary>
public static class ModelOptions
{
    public static Option<string> Model(string description = "Base LM: a Hugging Face folder, a .gguf or a llama2.c .bin (default: the shipped stories260K)")
        => new("--model", "-m") { Description = description };

    public static Option<string> Tokenizer()
        => new("--tokenizer") { Description = "Tokenizer file overriding the one found with the model (tokenizer.json or llama2.c tokenizer .bin)" };

    public static Option<int> Threads()
        => new("--threads") { Description = "CPU threads for torch (1 decodes a single sequence fastest; 2 helps batches and training)", DefaultValueFactory = _ => 1 };

    /// <summary>
    /// Loads the LM for decoding (generate, demo), in the column-major weight layout that makes batch-1
    /// matrix-vector products faster. Not for training: TorchSharp's optimizer cannot save that layout.
    /// </summary>
    public static CausalLM LoadLanguageModel(string? path, string? tokenizer)
    {
        var lm = CausalLM.Load(path ?? ShippedData.Find(ShippedData.DefaultModel), tokenizer);
        ColumnMajor.Apply(lm);
        return lm;
    }

    public static void SetThreads(int threads)
    {
        if (threads < 1) throw new PargsException($"--threads must be at least 1, got {threads}");
        torch.set_num_threads(threads);
    }
}
