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

    /// <summary>
    /// The classifier of <paramref name="dir"/> with a <b>one-label</b> head, as a reward-model run starts it (TRL's
    /// RewardTrainer loads AutoModelForSequenceClassification with num_labels = 1): a one-label head is kept (training
    /// continues it); a head with more labels has its last layer (<see cref="EncoderClassifier.ScoreLayer"/>) replaced by
    /// a fresh one-output layer drawn from <paramref name="seed"/> as transformers' _init_weights draws it (weight
    /// N(0, 0.02²), bias 0). The pooler and every other weight load strictly. In train mode.
    /// </summary>
    public static EncoderClassifier LoadOneLabel(string dir, int seed, out bool headReplaced)
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
        headReplaced = config.NumLabels != 1;
        bool replace = headReplaced;
        string head = EncoderClassifier.ScoreLayer(config.ModelType) + ".";
        var oneLabel = replace ? config with { Labels = ["LABEL_0"], MultiLabel = false } : config;
        var tensors = LoadWeights(dir);
        try
        {
            var model = EncoderClassifier.Create(oneLabel);
            bool OldHead(string name) => replace && name.StartsWith(head, StringComparison.Ordinal);
            var kept = tensors.Where(kv => !OldHead(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
            Models.StateDict.Load(model, kept, dir, mayBeMissing: OldHead, mayBeUnused: IsUnusedBuffer);
            if (replace) InitialiseScoreLayer(model, head, seed);
            model.train();
            return model;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>transformers' _init_weights for a Linear (initializer_range 0.02, every encoder's default), from a seeded generator.</summary>
    static void InitialiseScoreLayer(EncoderClassifier model, string head, int seed)
    {
        var random = new Random(seed);
        using var _ = no_grad();
        foreach (var (name, parameter) in model.named_parameters().Where(p => p.name.StartsWith(head, StringComparison.Ordinal)))
        {
            var values = new float[parameter.numel()];
            if (name.EndsWith(".weight", StringComparison.Ordinal))
                for (int i = 0; i < values.Length; i++)
                    values[i] = (float)(0.02 * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
            parameter.copy_(tensor(values, parameter.shape));
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
