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

    static bool IsZip(string path)
    {
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[2];
        return f.Read(head) == 2 && head[0] == (byte)'P' && head[1] == (byte)'K';
    }
}
