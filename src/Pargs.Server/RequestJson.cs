using System.Text.Json;

namespace Pargs.Server;

/// <summary>
/// Strict reading of a JSON request body: each getter checks the field's type and range and throws a 400 that names
/// the field. Null counts as absent (the SDKs send null for unset optional fields); unknown fields are refused by
/// <see cref="RefuseUnknown"/> so a misspelt setting is never silently ignored. Disposing it returns the parsed
/// document's pooled buffers (a remote steering client sends two requests per row and step: issue 18); nothing read from it
/// may be used after that but the strings and arrays the getters returned.
/// </summary>
public sealed class RequestJson : IDisposable
{
    readonly JsonDocument document;
    readonly JsonElement root;

    RequestJson(JsonDocument document)
    {
        this.document = document;
        root = document.RootElement;
    }

    public void Dispose() => document.Dispose();

    /// <summary>Parses a body; anything but a JSON object (bad JSON, invalid UTF-8, an array) is a 400.</summary>
    public static RequestJson Parse(byte[] body)
    {
        // The JSON reader checks UTF-8 only where it decodes a string; a body is checked whole, before anything reads it.
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            int at = 0;
            try { _ = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body); }
            catch (System.Text.DecoderFallbackException e) { at = e.Index; }
            throw new ApiException(400, $"The request body is not valid UTF-8 (byte {at}).", code: "invalid_json");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"The request body is not valid JSON ({Flatten(e.Message)}).", code: "invalid_json");
        }
        catch (ArgumentException e) // invalid UTF-8 surfaces here on some paths
        {
            throw new ApiException(400, $"The request body is not valid JSON ({Flatten(e.Message)}).", code: "invalid_json");
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            string kind = Kind(document.RootElement);
            document.Dispose();
            throw new ApiException(400, $"The request body must be a JSON object, got {kind}.", code: "invalid_json");
        }
        return new RequestJson(document);
    }

    static string Flatten(string message) => message.Replace('\n', ' ').Replace('\r', ' ');

    public JsonElement Root => root;

    public bool Has(string name) => root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null;

    JsonElement? Get(string name) => root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public void RefuseUnknown(IReadOnlyCollection<string> known, IReadOnlyDictionary<string, string> refused)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!seen.Add(property.Name))
                throw ApiException.BadRequest($"The field '{Shorten(property.Name)}' is given twice.", Shorten(property.Name));
            if (refused.TryGetValue(property.Name, out var why) && property.Value.ValueKind != JsonValueKind.Null && !IsDefault(property.Value))
                throw ApiException.BadRequest($"'{property.Name}' is not supported by this server: {why}", property.Name, "unsupported_parameter");
            if (!known.Contains(property.Name) && !refused.ContainsKey(property.Name))
                throw ApiException.BadRequest($"Unrecognized request argument supplied: {Shorten(property.Name)}", Shorten(property.Name), "unknown_parameter");
        }
    }

    /// <summary>A refused field sent with its neutral value (false, 0, empty) asks for nothing and is let through.</summary>
    static bool IsDefault(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.False => true,
        JsonValueKind.Number => value.TryGetDouble(out var d) && d == 0,
        JsonValueKind.Array => value.GetArrayLength() == 0,
        JsonValueKind.Object => !value.EnumerateObject().Any(),
        _ => false,
    };

    public string RequiredString(string name)
        => OptionalString(name) ?? throw ApiException.BadRequest($"'{name}' is required.", name, "missing_required_parameter");

    public string? OptionalString(string name)
    {
        if (Get(name) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.String) throw WrongType(name, value, "a string");
        return value.GetString();
    }

    public bool? OptionalBool(string name)
    {
        if (Get(name) is not { } value) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(name, value, "true or false"),
        };
    }

    /// <summary>A whole number; 2.0 is accepted (JavaScript clients send it), 2.5 and 1e30 are not.</summary>
    public long? OptionalInteger(string name, long min, long max)
    {
        if (Get(name) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number) throw WrongType(name, value, "an integer");
        long n;
        if (!value.TryGetInt64(out n))
        {
            if (!value.TryGetDouble(out var d) || !double.IsFinite(d) || d != Math.Floor(d) || Math.Abs(d) > 9e15)
                throw ApiException.BadRequest($"'{name}' must be an integer between {min} and {max}, got {Shorten(value.GetRawText())}.", name);
            n = (long)d;
        }
        if (n < min || n > max) throw ApiException.BadRequest($"'{name}' must be an integer between {min} and {max}, got {n}.", name);
        return n;
    }

    public double? OptionalNumber(string name)
    {
        if (Get(name) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number) throw WrongType(name, value, "a number");
        if (!value.TryGetDouble(out var d) || !double.IsFinite(d))
            throw ApiException.BadRequest($"'{name}' must be a finite number, got {Shorten(value.GetRawText())}.", name);
        return d;
    }

    /// <summary><c>stop</c>: a string or an array of strings, each non-empty.</summary>
    public IReadOnlyList<string> StopStrings(string name, ServerLimits limits)
    {
        if (Get(name) is not { } value) return Array.Empty<string>();
        var list = new List<string>();
        if (value.ValueKind == JsonValueKind.String) list.Add(value.GetString()!);
        else if (value.ValueKind == JsonValueKind.Array)
            foreach (var item in value.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String) throw WrongType(name, item, "a string or an array of strings");
                list.Add(item.GetString()!);
            }
        else throw WrongType(name, value, "a string or an array of strings");
        if (list.Count > limits.MaxStopStrings) throw ApiException.BadRequest($"'{name}' has {list.Count} strings; at most {limits.MaxStopStrings} are allowed.", name);
        foreach (var stop in list)
        {
            if (stop.Length == 0) throw ApiException.BadRequest($"'{name}' holds an empty string, which would match before any text.", name);
            if (stop.Length > limits.MaxStopLength) throw ApiException.BadRequest($"'{name}' holds a string of {stop.Length} characters; at most {limits.MaxStopLength} are allowed.", name);
        }
        return list;
    }

    public static ApiException WrongType(string name, JsonElement value, string expected)
        => ApiException.BadRequest($"'{name}' must be {expected}, got {Kind(value)}.", name, "invalid_type");

    public static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    public static string Shorten(string text) => text.Length > 64 ? text[..64] + "…" : text;
}
