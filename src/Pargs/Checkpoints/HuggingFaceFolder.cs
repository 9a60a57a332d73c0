using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Models;
using Pargs.Models.Families;
using Pargs.Tokenizers;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// A Hugging Face model folder: <c>config.json</c>, <c>model.safetensors</c> (or shards listed in
/// <c>model.safetensors.index.json</c>), optionally <c>generation_config.json</c> and tokenizer files.
/// Loading normalises names to what the matching transformers class uses; the tokenizer is left to the
/// caller (see Pargs.Tokenizers), so this class only moves tensors and config.
/// </summary>
public static class HuggingFaceFolder
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";
    public const string GenerationConfigFile = "generation_config.json";
    public const string TokenizerFile = "tokenizer.json";

    public static CheckpointContents Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new PargsException($"{dir}: model folder not found");
        string configPath = Path.Combine(dir, ConfigFile);
        if (!File.Exists(configPath))
            throw new PargsException($"{dir}: no {ConfigFile}; a Hugging Face model folder needs config.json next to model.safetensors");
        var config = ModelConfig.FromHuggingFaceJson(configPath);
        string? architecture = ReadArchitecture(configPath, config);
        var generation = ReadGenerationDefaults(Path.Combine(dir, GenerationConfigFile));

        return CheckpointLoader.Complete(config, architecture, LoadWeights(dir), dir, "hf-folder", generation: generation);
    }

    internal static string? ReadArchitecture(string configPath, ModelConfig config)
    {
        var json = Pargs.Json.CheckedJson.ReadFile(configPath).AsObject();
        if (json["architectures"] is not JsonArray { Count: > 0 } list) return null;
        string? name = list[0]?.GetValueKind() == JsonValueKind.String ? list[0]!.GetValue<string>() : null;
        var family = config.Family;
        if (name is null || ModelFamilies.ForArchitecture(name) != family)
            throw new PargsException($"{configPath}: architectures[0] is {list[0]?.ToJsonString() ?? "null"}, which Pargs cannot run for model_type \"{config.ModelType}\" (expected one of {string.Join(", ", family.Architectures)})");
        return name;
    }

    static Dictionary<string, torch.Tensor> LoadWeights(string dir)
    {
        string single = Path.Combine(dir, WeightsFile);
        if (File.Exists(single)) return Safetensors.Load(single);
        string index = Path.Combine(dir, IndexFile);
        if (File.Exists(index)) return LoadSharded(dir, index);
        string hint = File.Exists(Path.Combine(dir, "pytorch_model.bin"))
            ? " (pytorch_model.bin is a pickle and is not read; convert it to safetensors)"
            : "";
        throw new PargsException($"{dir}: no weights; expected {WeightsFile} or {IndexFile}{hint}");
    }

    /// <summary>The tensors of a folder's shards as its model.safetensors.index.json lists them.</summary>
    public static Dictionary<string, torch.Tensor> LoadShardedWeights(string dir) => LoadSharded(dir, Path.Combine(dir, IndexFile));

    static Dictionary<string, torch.Tensor> LoadSharded(string dir, string indexPath)
    {
        var index = Pargs.Json.CheckedJson.ReadFile(indexPath, Pargs.Json.CheckedJsonLimits.Large); // a top-level [] is an error, not a crash
        JsonObject? weightMap = index.IsObject && index["weight_map"].IsObject ? index["weight_map"].AsObject() : null;
        if (weightMap is null || weightMap.Count == 0)
            throw new PargsException($"{indexPath}: missing or empty object \"weight_map\" (tensor name → shard file)");
        var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, node) in weightMap)
        {
            string? file = node?.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : null;
            // Shards must sit in the folder itself: an index must not point anywhere else on disk.
            if (file is null || file.Length == 0 || Path.GetFileName(file) != file)
                throw new PargsException($"{indexPath}: weight_map[\"{name}\"] must be a file name in the same folder, got {node?.ToJsonString() ?? "null"}");
            shardOf[name] = file;
        }

        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var shard in shardOf.Values.Distinct().Order(StringComparer.Ordinal))
            {
                string shardPath = Path.Combine(dir, shard);
                if (!File.Exists(shardPath)) throw new PargsException($"{indexPath}: shard {shard} listed in weight_map is missing");
                foreach (var (name, t) in Safetensors.Load(shardPath))
                {
                    if (!shardOf.TryGetValue(name, out var expected) || expected != shard || tensors.ContainsKey(name))
                    {
                        t.Dispose();
                        if (tensors.ContainsKey(name)) throw new PargsException($"{shardPath}: tensor \"{name}\" appears in more than one shard");
                        continue; // not listed for this shard: the index is the source of truth
                    }
                    tensors[name] = t;
                }
            }
            foreach (var (name, shard) in shardOf)
                if (!tensors.ContainsKey(name))
                    throw new PargsException($"{indexPath}: weight_map puts tensor \"{name}\" in {shard}, but that shard does not contain it");
            return tensors;
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
    }

    public static GenerationDefaults? ReadGenerationDefaults(string path)
    {
        if (!File.Exists(path)) return null;
        var json = Pargs.Json.CheckedJson.ReadFile(path).Object(); // types checked field by field, naming the file and field
        return new GenerationDefaults(json["temperature"].DoubleOrNull(), json["top_k"].IntOrNull(), json["top_p"].DoubleOrNull(),
            json["max_new_tokens"].IntOrNull(), json["eos_token_id"].IntOrIntList(0, int.MaxValue));
    }

    /// <summary>
    /// Writes a loadable Hugging Face folder: config.json (<paramref name="architecture"/> in
    /// <c>architectures</c>, plus <paramref name="extraConfig"/> fields such as <c>num_labels</c>),
    /// model.safetensors, tokenizer.json when a tokenizer is given, generation_config.json when defaults are
    /// given. Atomic: everything is written to a sibling temporary folder which then replaces
    /// <paramref name="dir"/>, so an interrupted save never leaves a half-written model behind.
    /// </summary>
    public static void Save(string dir, ModelConfig config, string architecture, IReadOnlyDictionary<string, torch.Tensor> tensors,
        ITokenizer? tokenizer = null, IDictionary<string, JsonNode?>? extraConfig = null, GenerationDefaults? generation = null,
        StoredType weightsType = StoredType.F32)
    {
        string full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full) ?? throw new PargsException($"{dir}: cannot save a model as a filesystem root");
        Directory.CreateDirectory(parent);
        string tmp = $"{full}.tmp-{Guid.NewGuid():N}";
        Directory.CreateDirectory(tmp);
        try
        {
            var options = new JsonSerializerOptions { WriteIndented = true };
            File.WriteAllText(Path.Combine(tmp, ConfigFile), config.ToHuggingFaceJson(architecture, extraConfig).ToJsonString(options));
            Safetensors.Save(Path.Combine(tmp, WeightsFile), config.Family.TensorsForSaving(tensors, config, architecture), storeAs: weightsType);
            tokenizer?.SaveTokenizerJson(Path.Combine(tmp, TokenizerFile));
            if (generation != null)
                File.WriteAllText(Path.Combine(tmp, GenerationConfigFile), GenerationJson(generation).ToJsonString(options));
            ReplaceFolder(tmp, full);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
    }

    static JsonObject GenerationJson(GenerationDefaults g)
    {
        var json = new JsonObject();
        if (g.Temperature is { } t) json["temperature"] = t;
        if (g.TopK is { } k) json["top_k"] = k;
        if (g.TopP is { } p) json["top_p"] = p;
        if (g.MaxNewTokens is { } m) json["max_new_tokens"] = m;
        if (g.EosTokenIds is { Length: > 0 } eos)
            json["eos_token_id"] = eos.Length == 1 ? JsonValue.Create(eos[0]) : new JsonArray(eos.Select(e => (JsonNode?)e).ToArray());
        return json;
    }

    /// <summary>Moves the old folder aside, the new one in, then deletes the old; restores the old on failure.</summary>
    static void ReplaceFolder(string fresh, string target)
    {
        if (File.Exists(target)) throw new PargsException($"{target}: exists and is a file, not a model folder");
        if (!Directory.Exists(target))
        {
            Directory.Move(fresh, target);
            return;
        }
        string old = $"{target}.old-{Guid.NewGuid():N}";
        Directory.Move(target, old);
        try
        {
            Directory.Move(fresh, target);
        }
        catch
        {
            Directory.Move(old, target);
            throw;
        }
        Directory.Delete(old, recursive: true);
    }
}
