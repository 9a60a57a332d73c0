using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Json;

/// <summary>Bounds applied while a JSON document is parsed: the file size (checked before reading) and the nesting depth.</summary>
public sealed record CheckedJsonLimits(long MaxBytes, int MaxDepth)
{
    /// <summary>Small documents: config.json, generation_config.json, trainer_state.json, tokenizer_config.json.</summary>
    public static CheckedJsonLimits Config { get; } = new(16L << 20, 64);

    /// <summary>Large documents: tokenizer.json (a 256k vocabulary with merges is ~20 MB), safetensors headers.</summary>
    public static CheckedJsonLimits Large { get; } = new(512L << 20, 64);

    /// <summary>One JSONL row.</summary>
    public static CheckedJsonLimits Row { get; } = new(int.MaxValue, 64);
}

/// <summary>
/// A JSON value read from an untrusted file, with the file and the JSON path it came from. Every typed
/// accessor checks the JSON kind and the range and throws a <see cref="PargsException"/> whose one-line
/// message names the file, the path and the type expected, e.g.
/// <c>config.json: $.tie_word_embeddings: expected true or false, got "yes"</c>. Parsing bounds the file
/// size before reading and the nesting depth while reading, and turns every parser failure (syntax, depth,
/// duplicate keys, invalid UTF-8) into a <see cref="PargsException"/> naming the line.
/// <para>A field that is absent and a field that is <c>null</c> are both "missing" for the <c>…OrNull</c>
/// accessors (Hugging Face writes <c>null</c> for "not set"); the required accessors refuse both.</para>
/// </summary>
public sealed class CheckedJson
{
    /// <summary>Where the document came from (a file path, or e.g. "row 12 of data.jsonl").</summary>
    public string Source { get; }

    /// <summary>The JSON path of this value: <c>$</c>, <c>$.model.vocab</c>, <c>$.eos_token_id[0]</c>.</summary>
    public string Path { get; }

    /// <summary>The value; null for JSON null or an absent field (see <see cref="Exists"/>).</summary>
    public JsonNode? Node { get; }

    /// <summary>False when this is a field or index that the document does not have.</summary>
    public bool Exists { get; }

    CheckedJson(string source, string path, JsonNode? node, bool exists)
    {
        Source = source;
        Path = path;
        Node = node;
        Exists = exists;
    }

    /// <summary>Wraps an already-parsed node (e.g. one JSONL row) so its fields are read with checks.</summary>
    public static CheckedJson Wrap(JsonNode? node, string source, string path = "$") => new(source, path, node, true);

    /// <summary>Reads and parses a file; its size is checked before it is read.</summary>
    public static CheckedJson ReadFile(string path, CheckedJsonLimits? limits = null)
    {
        limits ??= CheckedJsonLimits.Config;
        if (Directory.Exists(path)) throw new PargsException($"{path}: is a folder, expected a JSON file");
        if (!File.Exists(path)) throw new PargsException($"{path}: file not found");
        byte[] bytes;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > limits.MaxBytes)
                throw new PargsException($"{path}: {length} bytes is larger than the {limits.MaxBytes} bytes Pargs reads for this file");
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e) { throw new PargsException($"{path}: cannot read ({e.Message})", e); }
        catch (UnauthorizedAccessException e) { throw new PargsException($"{path}: cannot read ({e.Message})", e); }
        return Parse(bytes, path, limits);
    }

    /// <summary>Parses UTF-8 bytes (a leading byte-order mark is skipped).</summary>
    public static CheckedJson Parse(ReadOnlySpan<byte> utf8, string source, CheckedJsonLimits? limits = null)
    {
        limits ??= CheckedJsonLimits.Config;
        if (utf8.Length > limits.MaxBytes)
            throw new PargsException($"{source}: {utf8.Length} bytes is larger than the {limits.MaxBytes} bytes Pargs reads here");
        if (utf8.StartsWith("\uFEFF"u8)) utf8 = utf8[3..];
        // The parser checks UTF-8 only when a string is read; checking it all here keeps errors at parse time.
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
            throw new PargsException($"{source}: invalid UTF-8 at byte {FirstInvalidUtf8(utf8)}");
        var options = new JsonDocumentOptions { MaxDepth = limits.MaxDepth, AllowDuplicateProperties = false };
        try
        {
            // JsonDocument validates everything (syntax, UTF-8, depth, duplicate keys) up front; the node
            // tree built from it is then complete, so no later access can fail lazily.
            using var document = JsonDocument.Parse(utf8.ToArray(), options);
            return new CheckedJson(source, "$", ToNode(document.RootElement), true);
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is { } line ? $" at line {line + 1}" : "";
            throw new PargsException($"{source}: not valid JSON{where}: {FirstLine(e.Message)}", e);
        }
        catch (InvalidOperationException e)
        {
            // A string or key whose escapes decode to invalid UTF-16, e.g. a lone surrogate "\ud800".
            throw new PargsException($"{source}: not valid JSON: {FirstLine(e.Message)}", e);
        }
        catch (DuplicateKeyException e)
        {
            throw new PargsException($"{source}: not valid JSON: {e.Message}", e);
        }
        catch (ArgumentException e)
        {
            throw new PargsException($"{source}: not valid JSON: {FirstLine(e.Message)}", e);
        }
    }

    /// <summary>Parses a string (e.g. one decoded JSONL line).</summary>
    public static CheckedJson Parse(string text, string source, CheckedJsonLimits? limits = null) =>
        Parse(Encoding.UTF8.GetBytes(text), source, limits);

    /// <summary>The offset of the first byte that does not start a valid UTF-8 sequence (-1 if none).</summary>
    public static long FirstInvalidUtf8(ReadOnlySpan<byte> utf8)
    {
        int offset = 0;
        while (offset < utf8.Length)
        {
            if (System.Buffers.OperationStatus.Done != System.Text.Rune.DecodeFromUtf8(utf8[offset..], out _, out int used)) return offset;
            offset += used;
        }
        return -1;
    }

    static string FirstLine(string message)
    {
        int cut = message.IndexOfAny(['\r', '\n']);
        return cut < 0 ? message : message[..cut];
    }

    // Depth is bounded by the parser's MaxDepth, so this recursion is bounded too.
    static JsonNode? ToNode(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => ToObject(element),
        JsonValueKind.Array => new JsonArray(element.EnumerateArray().Select(ToNode).ToArray()),
        JsonValueKind.Null => null,
        JsonValueKind.String => JsonValue.Create(Checked(element)),
        _ => JsonValue.Create(element.Clone()),
    };

    /// <summary>
    /// Decodes every string and property name of a parsed document once, so readers that walk a JsonDocument
    /// themselves meet a bad escape (a lone UTF-16 surrogate such as "\ud800") here, as an
    /// <see cref="InvalidOperationException"/> they can report, not later in the middle of their own logic.
    /// </summary>
    public static bool StringsAreValid(JsonElement root, out string? problem)
    {
        var stack = new Stack<JsonElement>();
        stack.Push(root);
        try
        {
            while (stack.Count > 0)
            {
                var element = stack.Pop();
                switch (element.ValueKind)
                {
                    case JsonValueKind.String: _ = element.GetString(); break;
                    case JsonValueKind.Array: foreach (var item in element.EnumerateArray()) stack.Push(item); break;
                    case JsonValueKind.Object:
                        foreach (var property in element.EnumerateObject())
                        {
                            _ = property.Name;
                            stack.Push(property.Value);
                        }
                        break;
                }
            }
        }
        catch (InvalidOperationException e)
        {
            problem = $"a string is not valid text ({FirstLine(e.Message)})";
            return false;
        }
        problem = null;
        return true;
    }

    /// <summary>The string decoded once here, so a bad escape fails at parse time and not in a later accessor.</summary>
    static JsonElement Checked(JsonElement element)
    {
        _ = element.GetString();
        return element.Clone();
    }

    static JsonObject ToObject(JsonElement element)
    {
        var result = new JsonObject();
        foreach (var property in element.EnumerateObject())
        {
            // Two readers of one file could otherwise disagree on which of two equal keys counts.
            if (result.ContainsKey(property.Name)) throw new DuplicateKeyException(property.Name);
            result.Add(property.Name, ToNode(property.Value));
        }
        return result;
    }

    sealed class DuplicateKeyException(string name) : Exception($"the key \"{name}\" appears twice in one object");

    /// <summary>An error about this value: "source: path: message".</summary>
    public PargsException Error(string message) => new($"{Source}: {Path}: {message}");

    /// <summary>The value as it appears in the file, shortened, for messages.</summary>
    public string Shown
    {
        get
        {
            if (!Exists) return "nothing (the field is missing)";
            if (Node is null) return "null";
            string text = Node.ToJsonString();
            return text.Length <= 60 ? text : text[..57] + "...";
        }
    }

    public JsonValueKind Kind => Node?.GetValueKind() ?? JsonValueKind.Null;
    public bool IsMissing => !Exists || Node is null;
    public bool IsObject => Node is JsonObject;
    public bool IsArray => Node is JsonArray;
    public bool IsString => Kind == JsonValueKind.String;
    public bool IsNumber => Kind == JsonValueKind.Number;
    public bool IsBool => Kind is JsonValueKind.True or JsonValueKind.False;

    PargsException Expected(string what) => Error($"expected {what}, got {Shown}");

    // ----- navigation -----

    /// <summary>A field of this object (missing when absent). Refuses a value that is not an object.</summary>
    public CheckedJson this[string name]
    {
        get
        {
            var obj = AsObject();
            string path = Path + "." + name;
            return obj.TryGetPropertyValue(name, out var value) ? new(Source, path, value, true) : new(Source, path, null, false);
        }
    }

    /// <summary>An element of this array. Refuses a value that is not an array or an index out of range.</summary>
    public CheckedJson this[int index]
    {
        get
        {
            var array = AsArray();
            if (index < 0 || index >= array.Count) throw Error($"expected at least {index + 1} elements, got {array.Count}");
            return new(Source, $"{Path}[{index}]", array[index], true);
        }
    }

    public bool Has(string name) => AsObject().ContainsKey(name);

    public JsonObject AsObject() => Node as JsonObject ?? throw Expected("an object");

    public JsonArray AsArray() => Node as JsonArray ?? throw Expected("an array");

    /// <summary>This value, refused unless it is an object.</summary>
    public CheckedJson Object() { AsObject(); return this; }

    /// <summary>This value, or null when missing; refused when present but not an object.</summary>
    public CheckedJson? ObjectOrNull() => IsMissing ? null : Object();

    /// <summary>The fields of an object, in file order.</summary>
    public IEnumerable<(string Name, CheckedJson Value)> Fields()
    {
        var obj = AsObject();
        foreach (var (name, value) in obj) yield return (name, new CheckedJson(Source, Path + "." + name, value, true));
    }

    /// <summary>The elements of an array, with at most <paramref name="maxCount"/> allowed.</summary>
    public IReadOnlyList<CheckedJson> Items(int maxCount = int.MaxValue)
    {
        var array = AsArray();
        if (array.Count > maxCount) throw Error($"has {array.Count} elements, at most {maxCount} allowed");
        var items = new CheckedJson[array.Count];
        for (int i = 0; i < items.Length; i++) items[i] = new CheckedJson(Source, $"{Path}[{i}]", array[i], true);
        return items;
    }

    // ----- typed values -----

    public string String() => IsString ? Node!.GetValue<JsonElement>().GetString()! : throw Expected("a string");

    public string? StringOrNull() => IsMissing ? null : String();

    /// <summary>A string that must be one of <paramref name="allowed"/>.</summary>
    public string OneOf(params string[] allowed)
    {
        string value = String();
        return allowed.Contains(value, StringComparer.Ordinal) ? value
            : throw Error($"is \"{value}\"; expected one of {string.Join(", ", allowed)}");
    }

    public bool Bool() => Kind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Expected("true or false"),
    };

    public bool? BoolOrNull() => IsMissing ? null : Bool();

    public bool Bool(bool fallback) => IsMissing ? fallback : Bool();

    /// <summary>An integer in [min, max]. Integral numbers written with an exponent or fraction (2e3, 64.0) count.</summary>
    public long Long(long min = long.MinValue, long max = long.MaxValue)
    {
        if (!IsNumber) throw Expected("an integer");
        var element = Node!.GetValue<JsonElement>();
        long value;
        if (!element.TryGetInt64(out value))
        {
            // A number beyond double range (1e400) does not parse as a double at all.
            if (!element.TryGetDouble(out double d)) throw Error($"{Shown} is out of range; expected an integer from {min} to {max}");
            if (d != Math.Floor(d)) throw Expected("an integer");
            if (d < min || d > max || d < long.MinValue || d >= 9.2233720368547758E18)
                throw Error($"{Shown} is out of range; expected an integer from {min} to {max}");
            value = (long)d;
        }
        if (value < min || value > max) throw Error($"{Shown} is out of range; expected an integer from {min} to {max}");
        return value;
    }

    public long? LongOrNull(long min = long.MinValue, long max = long.MaxValue) => IsMissing ? null : Long(min, max);

    public int Int(int min = int.MinValue, int max = int.MaxValue) => (int)Long(min, max);

    public int? IntOrNull(int min = int.MinValue, int max = int.MaxValue) => IsMissing ? null : Int(min, max);

    public int Int(int fallback, int min, int max) => IsMissing ? fallback : Int(min, max);

    /// <summary>A finite number in [min, max].</summary>
    public double Double(double min = double.MinValue, double max = double.MaxValue)
    {
        if (!IsNumber) throw Expected("a number");
        if (!Node!.GetValue<JsonElement>().TryGetDouble(out double value) || !double.IsFinite(value))
            throw Error($"{Shown} is out of range; expected a finite number");
        if (value < min || value > max)
            throw Error($"{Shown} is out of range; expected a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
        return value;
    }

    public double? DoubleOrNull(double min = double.MinValue, double max = double.MaxValue) => IsMissing ? null : Double(min, max);

    public double Double(double fallback, double min, double max) => IsMissing ? fallback : Double(min, max);

    /// <summary>A number that fits float32 without overflowing to infinity.</summary>
    public float Float(float min = float.MinValue, float max = float.MaxValue) => (float)Double(min, max);

    /// <summary>
    /// An integer or a list of integers, as Hugging Face writes token ids (<c>"eos_token_id": 2</c> or
    /// <c>[128001, 128009]</c>); null when missing. Each element is range-checked.
    /// </summary>
    public int[]? IntOrIntList(int min = int.MinValue, int max = int.MaxValue, int maxCount = 1024)
    {
        if (IsMissing) return null;
        if (IsArray) return Items(maxCount).Select(item => item.Int(min, max)).ToArray();
        if (IsNumber) return [Int(min, max)];
        throw Expected("an integer or a list of integers");
    }

    /// <summary>A list of strings.</summary>
    public string[] StringList(int maxCount = int.MaxValue) => Items(maxCount).Select(item => item.String()).ToArray();

    public override string ToString() => $"{Source}: {Path} = {Shown}";
}
