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
    /// RewardTrainer loads AutoModelForSequenceClassification with num_labels = 1). A …ForSequenceClassification folder
    /// with one label loads as it is (training continues it); with more labels its last layer
    /// (<see cref="EncoderClassifier.ScoreLayer"/>) is replaced by a fresh one-output layer. A pretrained encoder
    /// (<see cref="EncoderConfigReader.BaseArchitectures"/>: BertModel, …ForMaskedLM) gives the encoder (strictly: every
    /// tensor under <see cref="EncoderClassifier.BackbonePrefix"/> must be there; a bare model's unprefixed names are
    /// prefixed as transformers does) and the whole classification head is new; its pre-training head is not used. New
    /// layers are drawn from <paramref name="seed"/> as transformers' _init_weights draws them (weight N(0, 0.02²), bias 0).
    /// <paramref name="note"/> says what was made new (null when nothing was). In train mode.
    /// </summary>
    public static EncoderClassifier LoadOneLabel(string dir, int seed, out string? note)
    {
        if (!Directory.Exists(dir))
        {
            RefusePickle(dir);
            throw new PargsException($"{dir}: encoder model folder not found (expected config.json, model.safetensors and tokenizer.json)");
        }
        RefusePickle(dir);
        string configPath = Path.Combine(dir, HuggingFaceFolder.ConfigFile);
        if (!File.Exists(configPath)) throw new PargsException($"{dir}: no {HuggingFaceFolder.ConfigFile}");
        var json = Json.CheckedJson.ReadFile(configPath).Object();
        var config = EncoderConfigReader.Read(json, allowBase: true);
        string given = json["architectures"].IsMissing ? config.Architecture : json["architectures"][0].String();
        bool pretrained = given != config.Architecture;
        bool replace = pretrained || config.NumLabels != 1;
        string backbone = EncoderClassifier.BackbonePrefix(config.ModelType);
        string head = EncoderClassifier.ScoreLayer(config.ModelType) + ".";
        var oneLabel = replace ? config with { Labels = ["LABEL_0"], MultiLabel = false } : config;
        var tensors = LoadWeights(dir);
        try
        {
            var kept = new Dictionary<string, Tensor>();
            // A bare BertModel (…) saves its tensors without the model's prefix; transformers adds it when a head class loads them.
            bool bare = pretrained && !tensors.Keys.Any(k => k.StartsWith(backbone, StringComparison.Ordinal));
            foreach (var (name, value) in tensors)
            {
                string key = bare ? backbone + name : name;
                bool keep = pretrained ? key.StartsWith(backbone, StringComparison.Ordinal) : !(replace && key.StartsWith(head, StringComparison.Ordinal));
                if (keep) kept[key] = value;
            }
            var model = EncoderClassifier.Create(oneLabel);
            // New: the score layer of a multi-label head; for a pretrained encoder, the head outside the backbone and BERT's
            // pooler when the checkpoint has none (BertForMaskedLM is saved without it).
            bool IsNew(string name) => !kept.ContainsKey(name) && (pretrained
                ? !name.StartsWith(backbone, StringComparison.Ordinal) || name.StartsWith(backbone + "pooler.", StringComparison.Ordinal)
                : replace && name.StartsWith(head, StringComparison.Ordinal));
            var fresh = model.named_parameters().Select(p => p.name).Where(IsNew).ToList();
            Models.StateDict.Load(model, kept, dir, mayBeMissing: IsNew, mayBeUnused: IsUnusedBuffer);
            InitialiseNew(model, fresh, seed);
            note = pretrained ? $"{dir}: a pretrained {given}: the classification head ({string.Join(", ", fresh.Select(n => n[..n.LastIndexOf('.')]).Distinct())}) is new, one reward output initialised from the seed"
                : replace ? $"{dir}: the classifier's {config.NumLabels} labels are replaced by one reward output (TRL's num_labels = 1), its last layer initialised from the seed"
                : null;
            model.train();
            return model;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>transformers' _init_weights for the new Linear layers (initializer_range 0.02, every encoder's default), from a seeded generator.</summary>
    static void InitialiseNew(EncoderClassifier model, IReadOnlyCollection<string> names, int seed)
    {
        var random = new Random(seed);
        using var _ = no_grad();
        foreach (var (name, parameter) in model.named_parameters().Where(p => names.Contains(p.name)))
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
