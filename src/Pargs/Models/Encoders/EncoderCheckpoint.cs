using Pargs.Checkpoints;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Models.Encoders;

/// <summary>
/// Loads an encoder classifier folder strictly: config.json (<see cref="EncoderConfigReader"/>), model.safetensors
/// (or an index of shards) with exactly the tensors the classifier holds, and tokenizer.json. Pickled weights
/// (pytorch_model.bin, .pt, .ckpt) are refused: unpickling can run arbitrary code.
/// </summary>
public static class EncoderCheckpoint
{
    static readonly string[] PickleFiles = ["pytorch_model.bin", "pytorch_model.bin.index.json"];
    // Not ".bin" in general: llama2.c checkpoints and tokenizers are raw .bin files, not pickles.
    static readonly string[] PickleExtensions = [".pt", ".pth", ".ckpt", ".pkl"];

    static bool IsPickle(string file) => PickleExtensions.Contains(Path.GetExtension(file).ToLowerInvariant())
        || Path.GetFileName(file).StartsWith("pytorch_model", StringComparison.Ordinal) && file.EndsWith(".bin", StringComparison.Ordinal);

    /// <summary>Refuses a path that is, or a folder whose only weights are, a pickle — naming the file and why.</summary>
    public static void RefusePickle(string path)
    {
        static PargsException Refuse(string file) => new(
            $"{file}: pickled PyTorch weights are not read (unpickling can run arbitrary code); convert the model to safetensors " +
            "(e.g. transformers' save_pretrained(..., safe_serialization=True)) and load model.safetensors");
        if (File.Exists(path) && IsPickle(path)) throw Refuse(path);
        if (!Directory.Exists(path)) return;
        if (File.Exists(Path.Combine(path, HuggingFaceFolder.WeightsFile)) || File.Exists(Path.Combine(path, HuggingFaceFolder.IndexFile))) return;
        foreach (var name in PickleFiles)
            if (File.Exists(Path.Combine(path, name))) throw Refuse(Path.Combine(path, name));
        foreach (var file in Directory.EnumerateFiles(path))
            if (IsPickle(file)) throw Refuse(file);
    }

    /// <summary>The classifier and config of <paramref name="dir"/>, weights loaded, in eval mode.</summary>
    public static EncoderClassifier LoadClassifier(string dir)
    {
        if (!Directory.Exists(dir))
        {
            RefusePickle(dir);
            throw new PargsException($"{dir}: encoder model folder not found (expected config.json, model.safetensors and tokenizer.json)");
        }
        RefusePickle(dir);
        string configPath = Path.Combine(dir, HuggingFaceFolder.ConfigFile);
        if (!File.Exists(configPath)) throw new PargsException($"{dir}: no {HuggingFaceFolder.ConfigFile}");
        var config = EncoderConfigReader.Read(configPath);
        var tensors = LoadWeights(dir);
        try
        {
            var model = EncoderClassifier.Create(config);
            Models.StateDict.Load(model, tensors, dir, mayBeUnused: IsUnusedBuffer);
            model.eval();
            return model;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>Buffers transformers saved in older checkpoints (recomputed here): position_ids and the zero token_type_ids.</summary>
    static bool IsUnusedBuffer(string name) => name.EndsWith("embeddings.position_ids", StringComparison.Ordinal) || name.EndsWith("embeddings.token_type_ids", StringComparison.Ordinal);

    static Dictionary<string, Tensor> LoadWeights(string dir)
    {
        string single = Path.Combine(dir, HuggingFaceFolder.WeightsFile);
        if (File.Exists(single)) return Safetensors.Load(single);
        if (File.Exists(Path.Combine(dir, HuggingFaceFolder.IndexFile))) return HuggingFaceFolder.LoadShardedWeights(dir);
        throw new PargsException($"{dir}: no weights; expected {HuggingFaceFolder.WeightsFile} or {HuggingFaceFolder.IndexFile}");
    }

    /// <summary>tokenizer.json of the folder (with its tokenizer_config.json); its vocabulary must fit the model's.</summary>
    public static HuggingFaceTokenizer LoadTokenizer(string dir, EncoderConfig config, string? explicitPath = null)
    {
        string path = explicitPath ?? Path.Combine(dir, HuggingFaceFolder.TokenizerFile);
        if (!File.Exists(path))
            throw new PargsException($"{dir}: no {HuggingFaceFolder.TokenizerFile} (an encoder reward model reads text through its own fast-tokenizer file)");
        var tokenizer = TokenizerJson.LoadHuggingFace(path);
        if (tokenizer.VocabSize > config.VocabSize)
            throw new PargsException($"{path}: the tokenizer has {tokenizer.VocabSize} tokens but the model only {config.VocabSize} (vocab_size); they do not belong together");
        return tokenizer;
    }
}
