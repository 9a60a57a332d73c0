using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Models.Families;

/// <summary>
/// Typed reads of config.json fields for the family readers: a missing required field or a value of the wrong
/// kind is a <see cref="PargsException"/> naming the file and field, never another exception type.
/// </summary>
public sealed class ConfigJson(JsonObject json, string source)
{
    public JsonObject Json { get; } = json;
    public string Source { get; } = source;

    /// <summary>True when the field is present and not JSON null (transformers treats null as "not set").</summary>
    public bool Has(string name) => Json[name] is { } node && node.GetValueKind() != JsonValueKind.Null;

    public PargsException Error(string message) => new($"{Source}: {message}");

    public int Int(string name, int? fallback = null)
    {
        if (!Has(name)) return fallback ?? throw Error($"missing field \"{name}\"");
        var node = Json[name]!;
        try { return node.GetValue<int>(); }
        catch (Exception) { throw Error($"field \"{name}\" must be an integer, got {node.ToJsonString()}"); }
    }

    public int? OptionalInt(string name) => Has(name) ? Int(name) : null;

    public double Double(string name, double fallback)
    {
        if (!Has(name)) return fallback;
        var node = Json[name]!;
        try { return node.GetValue<double>(); }
        catch (Exception) { throw Error($"field \"{name}\" must be a number, got {node.ToJsonString()}"); }
    }

    public bool Bool(string name, bool fallback)
    {
        if (!Has(name)) return fallback;
        var node = Json[name]!;
        try { return node.GetValue<bool>(); }
        catch (Exception) { throw Error($"field \"{name}\" must be true or false, got {node.ToJsonString()}"); }
    }

    public string? String(string name)
    {
        if (!Has(name)) return null;
        var node = Json[name]!;
        try { return node.GetValue<string>(); }
        catch (Exception) { throw Error($"field \"{name}\" must be a string, got {node.ToJsonString()}"); }
    }

    /// <summary>A token id field that may hold one id or a list (Llama-3 lists several EOS ids); empty when absent.</summary>
    public int[] TokenIds(string name)
    {
        if (!Has(name)) return [];
        var node = Json[name]!;
        try
        {
            return node is JsonArray list ? list.Select(n => n!.GetValue<int>()).ToArray() : [node.GetValue<int>()];
        }
        catch (Exception) { throw Error($"field \"{name}\" must be a token id or a list of token ids, got {node.ToJsonString()}"); }
    }

    /// <summary>The first id of <see cref="TokenIds"/>, or null.</summary>
    public int? TokenId(string name) => TokenIds(name) is { Length: > 0 } ids ? ids[0] : null;
}
