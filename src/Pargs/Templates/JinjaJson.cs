using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Pargs.Templates;

/// <summary>
/// JSON in and out of templates. <see cref="ToJson"/> is transformers' <c>tojson</c> filter, i.e. Python's
/// <c>json.dumps(value, ensure_ascii=False, indent=…, separators=…, sort_keys=…)</c>: <c>", "</c> and <c>": "</c>
/// separators (<c>","</c> between items when indenting), non-ASCII text kept as is. <see cref="FromJson"/> turns
/// parsed JSON (messages, tools) into template values.
/// </summary>
public static class JinjaJson
{
    /// <summary>A JSON value as a template value: objects keep their key order; whole numbers become integers.</summary>
    public static object? FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => ObjectFromJson(element),
        JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Number => NumberFromJson(element),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>Integers (and whole numbers written as 1.0, as JavaScript reads them) become long; others double.</summary>
    static object NumberFromJson(JsonElement element)
    {
        if (element.TryGetInt64(out long l)) return l;
        double d = element.GetDouble();
        return d == Math.Floor(d) && Math.Abs(d) < 9e15 ? (long)d : d;
    }

    static Dictionary<string, object?> ObjectFromJson(JsonElement element)
    {
        var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject()) dict[JinjaDictKeys.Encode(property.Name, 0)] = FromJson(property.Value);
        return dict;
    }

    internal static string ToJson(object? value, int? indent, string itemSeparator, string keySeparator, bool sortKeys, bool ensureAscii, int line)
    {
        var text = new StringBuilder();
        Write(text, value, indent, itemSeparator, keySeparator, sortKeys, ensureAscii, 0, line);
        return text.ToString();
    }

    static void Write(StringBuilder text, object? value, int? indent, string itemSeparator, string keySeparator, bool sortKeys, bool ensureAscii, int depth, int line)
    {
        if (depth > JinjaParser.MaxNesting) throw new JinjaRuntimeException("tojson: the value nests too deeply", line);
        if (text.Length > JinjaLimits.MaxOutputChars) throw new JinjaRuntimeException($"tojson output beyond {JinjaLimits.MaxOutputChars} characters", line);
        switch (value)
        {
            case null: text.Append("null"); return;
            case bool b: text.Append(b ? "true" : "false"); return;
            case long l: text.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d:
                text.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : JinjaValues.FormatFloat(d));
                return;
            case string s: WriteString(text, s, ensureAscii); return;
            case JinjaGenerator:
                throw new JinjaRuntimeException("tojson: Object of type generator is not JSON serializable (pipe it through | list first)", line);
            case List<object?> list:
                WriteContainer(text, '[', ']', list.Count, indent, itemSeparator, depth, i =>
                    Write(text, list[i], indent, itemSeparator, keySeparator, sortKeys, ensureAscii, depth + 1, line));
                return;
            case Dictionary<string, object?> or JinjaNamespace:
            {
                var entries = (value is JinjaNamespace ns ? ns.Attributes : (Dictionary<string, object?>)value).ToList();
                if (sortKeys) entries.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
                WriteContainer(text, '{', '}', entries.Count, indent, itemSeparator, depth, i =>
                {
                    WriteString(text, JinjaDictKeys.JsonKey(entries[i].Key), ensureAscii);
                    text.Append(keySeparator);
                    Write(text, entries[i].Value, indent, itemSeparator, keySeparator, sortKeys, ensureAscii, depth + 1, line);
                });
                return;
            }
            default:
                throw new JinjaRuntimeException($"tojson: object of type {JinjaValues.TypeName(value)} is not JSON serializable", line);
        }
    }

    static void WriteContainer(StringBuilder text, char open, char close, int count, int? indent, string itemSeparator, int depth, Action<int> writeItem)
    {
        text.Append(open);
        if (count == 0) { text.Append(close); return; }
        for (int i = 0; i < count; i++)
        {
            if (i > 0) text.Append(itemSeparator);
            if (indent is int n) text.Append('\n').Append(' ', n * (depth + 1));
            writeItem(i);
        }
        if (indent is int m) text.Append('\n').Append(' ', m * depth);
        text.Append(close);
    }

    static void WriteString(StringBuilder text, string s, bool ensureAscii)
    {
        text.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                case '\b': text.Append("\\b"); break;
                case '\f': text.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else text.Append(c);
                    break;
            }
        }
        text.Append('"');
    }
}
