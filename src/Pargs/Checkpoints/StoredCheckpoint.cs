using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Models;
using Pargs.Models.Families.Llama;
using Pargs.Models.Families.Qwen3;
using Pargs.Weights;

namespace Pargs.Checkpoints;

/// <summary>
/// Opens a checkpoint for inference in its stored precision: the file is memory-mapped and every weight is a
/// view into it (<see cref="StoredTensors"/>) — a bf16 safetensors matrix stays 2 bytes, a GGUF Q8_0 / Q4_0 /
/// K-quant matrix stays as stored, nothing is copied but norms and biases. The same names, shapes and strict
/// checks as the float32 loaders (<see cref="ExpectedTensors"/>; GGUF names through <see cref="GgufConverter.Families"/>,
/// Meta's rotary layout undone by reordering q/k rows in the view). Config, tokenizer and generation defaults come
/// back as a <see cref="CheckpointContents"/> without tensors.
/// </summary>
public static class StoredCheckpoint
{
    /// <summary>
    /// The checkpoint at <paramref name="path"/> mapped, or null when it is not one this path serves (a llama2.c
    /// .bin, a family without a stored-precision kernel, an F64 safetensors): the caller loads it as float32.
    /// With <paramref name="rewardModel"/>, the checkpoint is a …ForSequenceClassification whose head is
    /// <c>score.weight</c> (one row; GGUF: <c>cls.output.weight</c>) instead of an lm_head.
    /// </summary>
    public static (CheckpointContents Contents, StoredTensors Weights)? Open(string path, bool rewardModel = false)
    {
        if (Directory.Exists(path)) return OpenFolder(path, rewardModel);
        if (!File.Exists(path)) return null; // the float32 loader words the error
        string name = Path.GetFileName(path);
        if (name is HuggingFaceFolder.ConfigFile or HuggingFaceFolder.WeightsFile or HuggingFaceFolder.IndexFile)
            return OpenFolder(Path.GetDirectoryName(Path.GetFullPath(path))!, rewardModel);
        return Path.GetExtension(path).Equals(".gguf", StringComparison.OrdinalIgnoreCase) ? OpenGguf(path, rewardModel) : null;
    }

    /// <summary>The reward model's head in a GGUF: llama.cpp's classifier output tensor (its rerankers' name for a score head).</summary>
    public const string GgufScoreTensor = "cls.output.weight";

    /// <summary>Families whose forward <see cref="LlamaDecodeKernel"/> computes (the stored-precision engine).</summary>
    public static bool HasStoredKernel(ModelConfig config) => config.Family is LlamaFamily or Qwen3Family;

    static (CheckpointContents, StoredTensors)? OpenFolder(string dir, bool rewardModel)
    {
        string configPath = Path.Combine(dir, HuggingFaceFolder.ConfigFile);
        if (!File.Exists(configPath)) return null;
        var config = ModelConfig.FromHuggingFaceJson(configPath);
        if (!HasStoredKernel(config)) return null;
        string? architecture = HuggingFaceFolder.ReadArchitecture(configPath, config);
        if (rewardModel && architecture?.EndsWith("ForSequenceClassification", StringComparison.Ordinal) != true)
            architecture = config.Family.SequenceClassificationArchitecture(config); // the strict check below then names a missing score.weight
        var files = WeightFiles(dir);
        if (files is null) return null;
        var headers = files.Select(f => (f.Path, f.Names, Header: Safetensors.ReadHeader(f.Path))).ToList();
        if (headers.Any(h => h.Header.Entries.Any(e => FormatOf(e.Type) is null))) return null; // F64: the float32 loader converts it

        var weights = new StoredTensors(dir);
        try
        {
            foreach (var (file, names, header) in headers)
            {
                var mapped = MappedFile.Open(file);
                weights.Own(mapped);
                foreach (var e in header.Entries)
                {
                    if (names is not null && !names.Contains(e.Name)) continue; // the index is the source of truth
                    var format = FormatOf(e.Type)!.Value;
                    if (e.Shape.Length is < 1 or > 2 || e.Shape.Any(d => d is < 0 or > int.MaxValue))
                        throw new PargsException($"{file}: tensor \"{e.Name}\" has shape [{string.Join(", ", e.Shape)}]; a weight of this family is a matrix or a vector");
                    int rows = e.Shape.Length == 2 ? (int)e.Shape[0] : 1, cols = (int)e.Shape[^1];
                    var matrix = mapped.Matrix(e.Name, format, rows, cols, e.Begin);
                    if (e.Shape.Length == 1) weights.AddVector(e.Name, matrix);
                    else weights.AddMatrix(e.Name, matrix);
                }
            }
            Check(config, architecture, weights, dir, rewardModel);
            CheckFits(weights, dir);
            var contents = new CheckpointContents
            {
                Config = config, Tensors = new(StringComparer.Ordinal), Source = dir, Format = "hf-folder", Architecture = architecture,
                Generation = HuggingFaceFolder.ReadGenerationDefaults(Path.Combine(dir, HuggingFaceFolder.GenerationConfigFile)),
            };
            return (contents, weights);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>The safetensors files of a folder, each with the names the index assigns it (null: all of them).</summary>
    static List<(string Path, HashSet<string>? Names)>? WeightFiles(string dir)
    {
        string single = Path.Combine(dir, HuggingFaceFolder.WeightsFile);
        if (File.Exists(single)) return [(single, null)];
        string indexPath = Path.Combine(dir, HuggingFaceFolder.IndexFile);
        if (!File.Exists(indexPath)) return null;
        var index = Pargs.Json.CheckedJson.ReadFile(indexPath, Pargs.Json.CheckedJsonLimits.Large);
        JsonObject? weightMap = index.IsObject && index["weight_map"].IsObject ? index["weight_map"].AsObject() : null;
        if (weightMap is null || weightMap.Count == 0) return null; // the float32 loader words the error
        var byShard = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (name, node) in weightMap)
        {
            string? file = node?.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : null;
            if (file is null || file.Length == 0 || Path.GetFileName(file) != file)
                throw new PargsException($"{indexPath}: weight_map[\"{name}\"] must be a file name in the same folder, got {node?.ToJsonString() ?? "null"}");
            if (!byShard.TryGetValue(file, out var names)) byShard[file] = names = new(StringComparer.Ordinal);
            names.Add(name);
        }
        foreach (var shard in byShard.Keys)
            if (!File.Exists(Path.Combine(dir, shard))) throw new PargsException($"{indexPath}: shard {shard} listed in weight_map is missing");
        return byShard.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (Path.Combine(dir, p.Key), (HashSet<string>?)p.Value)).ToList();
    }

    static WeightFormat? FormatOf(StoredType type) => type switch
    {
        StoredType.F32 => WeightFormat.F32, StoredType.F16 => WeightFormat.F16, StoredType.BF16 => WeightFormat.BF16,
        _ => null,
    };

    static (CheckpointContents, StoredTensors)? OpenGguf(string path, bool rewardModel)
    {
        var gguf = GgufFile.Read(path);
        var config = GgufCheckpoint.ReadConfig(gguf);
        if (!HasStoredKernel(config) || !GgufConverter.Families.TryGetValue(config.ModelType, out var family)) return null;
        string architecture = rewardModel ? config.Family.SequenceClassificationArchitecture(config) : config.Family.CausalLMArchitecture(config);
        var weights = new StoredTensors(path);
        try
        {
            var mapped = MappedFile.Open(path);
            weights.Own(mapped);
            foreach (var info in gguf.Tensors)
            {
                if (info.Name == Models.Families.Llama.LlamaGguf.RopeFreqsTensor) continue; // read into the config (GgufCheckpoint.ReadConfig)
                var (hfName, transpose) = info.Name == GgufScoreTensor ? ("score.weight", false) : GgufCheckpoint.HuggingFaceName(family, info.Name)
                    ?? throw new PargsException($"{path}: tensor \"{info.Name}\" has no {architecture} counterpart Pargs knows (unsupported GGUF variant?)");
                if (transpose) throw new PargsException($"{path}: tensor \"{info.Name}\" is stored transposed, which the stored-precision kernel does not read");
                var matrix = mapped.Matrix(info); // an unknown type or truncated data is an error naming the tensor
                int[]? order = null;
                if (family.MetaRotaryLayout && (hfName.Contains(".q_proj.", StringComparison.Ordinal) || hfName.Contains(".k_proj.", StringComparison.Ordinal)))
                {
                    int heads = hfName.Contains(".q_proj.", StringComparison.Ordinal) ? config.NumHeads : config.NumKvHeads;
                    long length = info.Shape[0];
                    if (info.Shape.Length is < 1 or > 2 || length % (2L * heads) != 0)
                        throw new PargsException($"{path}: tensor \"{info.Name}\" has shape [{string.Join(", ", info.Shape)}], which does not split into {heads} heads");
                    order = HuggingFaceRowOrder((int)length, heads);
                }
                if (info.Shape.Length == 1) weights.AddVector(hfName, matrix, order);
                else weights.AddMatrix(hfName, order is null ? matrix : matrix.WithRowOrder(order));
            }
            Check(config, architecture, weights, path, rewardModel);
            CheckFits(weights, path);
            var contents = new CheckpointContents
            {
                Config = config, Tensors = new(StringComparer.Ordinal), Source = path, Format = "gguf", Architecture = architecture,
            };
            return (contents, weights);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Which stored (Meta, interleaved) row each Hugging Face (rotate-half) row of a q/k projection is — the
    /// permutation <see cref="MetaRotaryLayout.ToHuggingFace"/> applies, as an index: within each head, HF row
    /// a·D/2 + b is stored row 2b + a.
    /// </summary>
    public static int[] HuggingFaceRowOrder(int rows, int heads)
    {
        int headDim = rows / heads, half = headDim / 2;
        var order = new int[rows];
        for (int h = 0; h < heads; h++)
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < half; b++)
                    order[h * headDim + a * half + b] = h * headDim + 2 * b + a;
        return order;
    }

    /// <summary>
    /// Refuses weights that cannot be resident in this machine's available memory (<c>MemAvailable</c> of
    /// /proc/meminfo, which counts page cache a mapped file can reuse) with the numbers and the file type that would
    /// fit — instead of a model that pages from disk on every token. The KV cache and reward model are checked when
    /// decoding starts (DecodingMemory); this is the weights alone, before any of them is read.
    /// </summary>
    public static void CheckFits(StoredTensors weights, string source, long? availableBytes = null)
    {
        long? available = availableBytes ?? MemAvailable();
        if (available is not { } free || weights.Bytes <= free) return;
        long parameters = weights.Elements;
        var smaller = new (string Type, double BytesPerWeight)[] { ("bf16", 2), ("q8_0", 34.0 / 32), ("q4_0", 18.0 / 32) }
            .Where(t => parameters * t.BytesPerWeight <= free && parameters * t.BytesPerWeight < weights.Bytes).Select(t => t.Type).FirstOrDefault();
        string hint = smaller is null ? "no file type Pargs writes is small enough; free memory or use a smaller model"
            : $"convert it smaller with `pargs convert MODEL --to gguf --type {smaller}` (≈ {parameters * (smaller == "bf16" ? 2 : smaller == "q8_0" ? 34.0 / 32 : 18.0 / 32) / 1e9:F2} GB)";
        throw new PargsException($"{source}: its weights need {weights.Bytes / 1e9:F2} GB resident but only {free / 1e9:F2} GB of memory is available (MemAvailable); {hint}");
    }

    /// <summary>/proc/meminfo's MemAvailable in bytes, or null where there is none.</summary>
    static long? MemAvailable()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], out long kib)) return kib * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>The strict check of the float32 loaders, on stored tensors: every expected tensor with its shape, nothing unexpected.</summary>
    static void Check(ModelConfig config, string? architecture, StoredTensors weights, string source, bool rewardModel = false)
    {
        if (config.NumLayers > weights.Count)
            throw new PargsException($"{source}: the config claims {config.NumLayers} layers but the checkpoint holds only {weights.Count} tensors");
        if (!rewardModel && !weights.Contains("lm_head.weight") && weights.Contains("score.weight"))
            throw new PargsException($"{source}: this checkpoint has a score head (a reward model), not an lm_head; load it as a reward model");
        if (rewardModel && !weights.Contains("score.weight"))
            throw new PargsException(
                $"{source}: this checkpoint has no score head (score.weight); it is a base language model, not a reward model " +
                "(train one with `pargs train-rm`, or check that the reward-model export saved the head)");
        if (rewardModel && weights.Shape("score.weight") is { } head && (head.Length != 2 || head[0] != 1))
            throw new PargsException($"{source}: tensor \"score.weight\" has shape [{string.Join(", ", head)}]; a reward model has one output (num_labels 1), [1, {config.HiddenSize}]");
        var expected = ExpectedTensors.For(config, architecture);
        foreach (var (name, shape) in expected)
        {
            var actual = weights.Shape(name)
                ?? throw new PargsException($"{source}: missing tensor \"{name}\" required by the config ({config.ModelType}, {config.NumLayers} layers{(architecture is null ? "" : ", " + architecture)})");
            bool ok = actual.Length == shape.Length;
            for (int i = 0; ok && i < shape.Length; i++) ok = shape[i] < 0 || shape[i] == actual[i];
            if (!ok)
                throw new PargsException($"{source}: tensor \"{name}\" has shape [{string.Join(", ", actual)}] but the config implies [{string.Join(", ", shape.Select(d => d < 0 ? "*" : d.ToString()))}]");
        }
        var names = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var unexpected = weights.Names.Where(n => !names.Contains(n) && !((config.TieWordEmbeddings || rewardModel) && n == "lm_head.weight")
                                                  && !n.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal)).ToList();
        if (unexpected.Count > 0)
            throw new PargsException($"{source}: unexpected tensor(s) {string.Join(", ", unexpected.Take(5).Select(n => $"\"{n}\""))}{(unexpected.Count > 5 ? $" and {unexpected.Count - 5} more" : "")} — the config does not describe this checkpoint");
    }
}
