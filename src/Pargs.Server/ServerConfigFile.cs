using Pargs.Json;

namespace Pargs.Server;

/// <summary>One language model a server config file names: requests call it <see cref="Name"/>.</summary>
public sealed record ServedModelSpec(string Name, string Path, string Template, string? RewardModel);

/// <summary>One reward model a server config file names.</summary>
public sealed record ServedRewardModelSpec(string Name, string Path);

/// <summary>
/// <c>pargs serve --config FILE</c>: what the command line says, as JSON, for servers with several models —
/// <code>
/// {"host": "127.0.0.1", "port": 8000, "api_key": "…",
///  "models": [{"name": "qwen", "path": "models/qwen", "template": "auto", "reward_model": "harmless"}],
///  "reward_models": [{"name": "harmless", "path": "rms/partial"}],
///  "limits": {"max_queue": 32, "max_tokens": 1024, "max_n": 16, "max_k": 64, "max_body_bytes": 1048576, "grace_seconds": 30, "prefix_cache_mb": 256}}
/// </code>
/// Relative paths are relative to the file's folder. Read through <see cref="CheckedJson"/>: a wrong type, a value
/// out of range, an unknown key, a duplicate name or a model's reward_model that names no loaded reward model is
/// one line naming the file and the JSON path — nothing is loaded before the whole file has been checked.
/// </summary>
public sealed record ServerConfigFile
{
    public string? Host { get; init; }
    public int? Port { get; init; }
    public string? ApiKey { get; init; }
    public IReadOnlyList<ServedModelSpec> Models { get; init; } = [];
    public IReadOnlyList<ServedRewardModelSpec> RewardModels { get; init; } = [];
    public ServerLimits Limits { get; init; } = new();

    static readonly string[] TopKeys = ["host", "port", "api_key", "models", "reward_models", "limits"];
    static readonly string[] ModelKeys = ["name", "path", "template", "reward_model"];
    static readonly string[] RewardModelKeys = ["name", "path"];
    static readonly string[] LimitKeys = ["max_queue", "max_tokens", "max_n", "max_k", "max_body_bytes", "grace_seconds", "prefix_cache_mb"];

    public static ServerConfigFile Read(string path)
    {
        var root = CheckedJson.ReadFile(path).Object();
        OnlyKnown(root, TopKeys);
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        string Resolve(string p) => System.IO.Path.IsPathRooted(p) ? p : System.IO.Path.GetFullPath(System.IO.Path.Combine(folder, p));

        var rewardModels = new List<ServedRewardModelSpec>();
        foreach (var item in root["reward_models"].IsMissing ? Array.Empty<CheckedJson>() : root["reward_models"].Items(64))
        {
            item.Object();
            OnlyKnown(item, RewardModelKeys);
            var spec = new ServedRewardModelSpec(Name(item), Resolve(item["path"].String()));
            if (rewardModels.Any(r => r.Name == spec.Name)) throw item["name"].Error($"reward model name \"{spec.Name}\" is given twice");
            rewardModels.Add(spec);
        }
        var models = new List<ServedModelSpec>();
        foreach (var item in root["models"].Items(64))
        {
            item.Object();
            OnlyKnown(item, ModelKeys);
            string template = item["template"].IsMissing ? Pargs.Data.PromptTemplate.AutoName : item["template"].OneOf("auto", "plain", "hh", "chatml");
            string? rm = item["reward_model"].StringOrNull();
            if (rm is not null && rewardModels.All(r => r.Name != rm))
                throw item["reward_model"].Error($"names no reward model of this file (it has: {string.Join(", ", rewardModels.Select(r => r.Name).DefaultIfEmpty("none"))})");
            var spec = new ServedModelSpec(Name(item), Resolve(item["path"].String()), template, rm);
            if (models.Any(m => m.Name == spec.Name)) throw item["name"].Error($"model name \"{spec.Name}\" is given twice");
            models.Add(spec);
        }
        if (models.Count == 0) throw root["models"].Error("lists no model (give at least one {\"name\", \"path\"})");

        var limits = new ServerLimits();
        if (root["limits"].ObjectOrNull() is { } l)
        {
            OnlyKnown(l, LimitKeys);
            limits = limits with
            {
                MaxQueuedRequests = l["max_queue"].IntOrNull(1, 100_000) ?? limits.MaxQueuedRequests,
                MaxTokens = l["max_tokens"].IntOrNull(1, 1 << 20) ?? limits.MaxTokens,
                MaxN = l["max_n"].IntOrNull(1, 1024) ?? limits.MaxN,
                MaxK = l["max_k"].IntOrNull(1, 1 << 16) ?? limits.MaxK,
                MaxBodyBytes = l["max_body_bytes"].LongOrNull(1024, 1L << 30) ?? limits.MaxBodyBytes,
                ShutdownGrace = l["grace_seconds"].IsMissing ? limits.ShutdownGrace : TimeSpan.FromSeconds(l["grace_seconds"].Int(0, 3600)),
                PrefixCacheBytes = l["prefix_cache_mb"].IsMissing ? limits.PrefixCacheBytes : (long)l["prefix_cache_mb"].Int(0, 1 << 20) << 20,
            };
        }
        return new ServerConfigFile
        {
            Host = root["host"].StringOrNull(),
            Port = root["port"].IntOrNull(0, 65535),
            ApiKey = root["api_key"].StringOrNull(),
            Models = models,
            RewardModels = rewardModels,
            Limits = limits,
        };
    }

    /// <summary>A model's request name: what clients send as "model" — a name, never a path.</summary>
    static string Name(CheckedJson item)
    {
        string name = item["name"].String();
        if (!ServedModels.IsValidName(name)) // the server's own rule, checked before anything loads
            throw item["name"].Error($"\"{name}\" is not a model name (letters, digits, '.', '_', ':' or '-', at most 128 characters)");
        return name;
    }

    static void OnlyKnown(CheckedJson obj, string[] known)
    {
        foreach (var (name, value) in obj.Fields())
            if (!known.Contains(name))
                throw value.Error($"unknown key (known here: {string.Join(", ", known)})");
    }
}
