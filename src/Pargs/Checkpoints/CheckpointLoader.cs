using Pargs.Models;
using Pargs.Tokenizers;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>Opens any checkpoint Pargs reads, choosing the reader from what the path is.</summary>
public static class CheckpointLoader
{
    public const string AcceptedFormats =
        "a Hugging Face folder (config.json + model.safetensors or model.safetensors.index.json), a .gguf file (llama), or a llama2.c .bin file";

    public static CheckpointContents Load(string path)
    {
        if (Directory.Exists(path)) return HuggingFaceFolder.Load(path);
        if (!File.Exists(path)) throw new PargsException($"{path}: no such file or folder (expected {AcceptedFormats})");
        string name = Path.GetFileName(path);
        // Pointing at a file inside an HF folder means the folder.
        if (name is HuggingFaceFolder.ConfigFile or HuggingFaceFolder.WeightsFile or HuggingFaceFolder.IndexFile)
            return HuggingFaceFolder.Load(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension == ".gguf") return GgufCheckpoint.Load(path);
        if (extension == ".bin")
        {
            if (IsZip(path))
                throw new PargsException($"{path}: this is a PyTorch pickle checkpoint, which Pargs does not read; convert it to safetensors (or pass its folder once it has model.safetensors)");
            return Llama2cCheckpoint.Load(path);
        }
        throw new PargsException($"{path}: unrecognised checkpoint; expected {AcceptedFormats}");
    }

    /// <summary>
    /// The tail every reader shares: the family puts the tensor names into its modules' form, the strict check
    /// against the family's declaration runs, and the contents are assembled. On failure the tensors are
    /// disposed (the reader hands over ownership) and the <see cref="PargsException"/> propagates.
    /// </summary>
    public static CheckpointContents Complete(ModelConfig config, string? architecture, Dictionary<string, torch.Tensor> tensors,
        string source, string format, ITokenizer? tokenizer = null, GenerationDefaults? generation = null)
    {
        try
        {
            config.Family.NormaliseTensorNames(tensors, config, architecture);
            ExpectedTensors.Check(config, architecture, tensors, source);
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return new CheckpointContents
        {
            Config = config,
            Tensors = tensors,
            Source = source,
            Format = format,
            Tokenizer = tokenizer,
            Generation = generation,
            Architecture = architecture,
        };
    }

    static bool IsZip(string path)
    {
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[2];
        return f.Read(head) == 2 && head[0] == (byte)'P' && head[1] == (byte)'K';
    }
}
