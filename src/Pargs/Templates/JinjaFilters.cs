using System.Globalization;
using System.Text;

namespace Pargs.Templates;

/// <summary>
/// Jinja's built-in filters that chat templates use, with Jinja's argument names and defaults, and
/// transformers' own <c>tojson</c>. An argument a filter does not take is an error, never ignored.
/// </summary>
static class JinjaFilters
{
    public static object? Apply(JinjaInterpreter interpreter, string name, object? value, JinjaArguments args)
    {
        int line = args.Line;
        switch (name)
        {
            case "safe":
                args.Check(name, 0);
                return value;
            case "string":
                args.Check(name, 0);
                return JinjaValues.ToText(value);
            case "length":
            case "count":
                args.Check(name, 0);
                return JinjaValues.Length(value, line);
            case "upper": args.Check(name, 0); return Text(value, name, line).ToUpperInvariant();
            case "lower": args.Check(name, 0); return Text(value, name, line).ToLowerInvariant();
            case "capitalize": args.Check(name, 0); return JinjaMethods.Capitalize(Text(value, name, line));
            case "title": args.Check(name, 0); return Title(Text(value, name, line));
            case "trim":
            {
                args.Check(name, 1, "chars");
                var chars = args.Get(0, "chars", null);
                return JinjaMethods.Strip(Text(value, name, line), chars is null ? null : Text(chars, name, line), true, true);
            }
            case "replace":
            {
                args.Check(name, 3, "old", "new", "count");
                long count = args.Get(2, "count", null) is long c ? c : -1;
                return JinjaMethods.Replace(Text(value, name, line), Text(args.Get(0, "old", null), name, line), Text(args.Get(1, "new", null), name, line), count);
            }
            case "default":
            case "d":
            {
                args.Check(name, 2, "default_value", "boolean");
                var fallback = args.Get(0, "default_value", "");
                bool boolean = JinjaValues.IsTrue(args.Get(1, "boolean", false));
                return value is JinjaUndefined || (boolean && !JinjaValues.IsTrue(value)) ? fallback : value;
            }
            case "first":
            {
                args.Check(name, 0);
                var items = JinjaValues.Iterate(value, line);
                return items.Count > 0 ? items[0] : new JinjaUndefined("first item of an empty sequence");
            }
            case "last":
            {
                args.Check(name, 0);
                if (value is JinjaGenerator) throw new JinjaRuntimeException("last: 'generator' object is not reversible (pipe it through | list first)", line);
                var items = JinjaValues.Iterate(value, line);
                return items.Count > 0 ? items[^1] : new JinjaUndefined("last item of an empty sequence");
            }
            case "list":
                args.Check(name, 0);
                return JinjaValues.Iterate(value, line).ToList();
            case "items":
                args.Check(name, 0);
                return value switch
                {
                    JinjaUndefined => new JinjaGenerator([]),
                    Dictionary<string, object?> dict => new JinjaGenerator(dict.Select(kv => (object?)new JinjaTuple([JinjaDictKeys.Decode(kv.Key), kv.Value]))),
                    _ => throw new JinjaRuntimeException($"items filter: can only get item pairs from a mapping, not {JinjaValues.TypeName(value)}", line),
                };
            case "reverse":
                args.Check(name, 0);
                if (value is string rs) return JinjaValues.FromCodePoints(JinjaValues.CodePoints(rs).Reverse());
                return JinjaValues.Iterate(value, line).Reverse().ToList();
            case "join":
            {
                args.Check(name, 2, "d", "attribute");
                var separator = JinjaValues.ToText(args.Get(0, "d", ""));
                var attribute = args.Get(1, "attribute", null);
                var items = JinjaValues.Iterate(value, line);
                if (attribute is not null) items = items.Select(i => Attribute(i, attribute, line)).ToList();
                return string.Join(separator, items.Select(JinjaValues.ToText));
            }
            case "tojson":
            {
                // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
                args.Check(name, 4, "ensure_ascii", "indent", "separators", "sort_keys");
                bool ensureAscii = JinjaValues.IsTrue(args.Get(0, "ensure_ascii", false));
                int? indent = args.Get(1, "indent", null) switch
                {
                    null => null,
                    long n => (int)Math.Clamp(n, 0, 64),
                    var other => throw new JinjaRuntimeException($"tojson: indent must be an integer, got {JinjaValues.TypeName(other)}", line),
                };
                string itemSeparator = indent is null ? ", " : ",", keySeparator = ": ";
                if (args.Get(2, "separators", null) is List<object?> { Count: 2 } separators)
                {
                    itemSeparator = Text(separators[0], name, line);
                    keySeparator = Text(separators[1], name, line);
                }
                bool sortKeys = JinjaValues.IsTrue(args.Get(3, "sort_keys", false));
                return JinjaJson.ToJson(value, indent, itemSeparator, keySeparator, sortKeys, ensureAscii, line);
            }
            case "indent":
            {
                args.Check(name, 3, "width", "first", "blank");
                var width = args.Get(0, "width", 4L);
                string indentation = width is string ws ? ws : new string(' ', (int)Math.Clamp(JinjaValues.ToLong(width is long or bool ? width : 4L), 0, 1024));
                bool first = JinjaValues.IsTrue(args.Get(1, "first", false));
                bool blank = JinjaValues.IsTrue(args.Get(2, "blank", false));
                return Indent(Text(value, name, line) + "\n", indentation, first, blank);
            }
            case "map": return Map(interpreter, value, args);
            case "select":
            case "reject":
                return Select(value, args, name == "select", byAttribute: false);
            case "selectattr":
            case "rejectattr":
                return Select(value, args, name == "selectattr", byAttribute: true);
            case "attr":
                args.Check(name, 1);
            {
                // attr() is getattr only: a dict's keys are items, not attributes.
                var attribute = Text(args.Get(0, "name", null), name, line);
                return value is Dictionary<string, object?> && !JinjaMethods.HasMethod(value, attribute)
                    ? new JinjaUndefined($"'dict object' has no attribute '{attribute}'; it")
                    : JinjaValues.GetAttribute(value, attribute, line);
            }
            case "abs":
                args.Check(name, 0);
                return value switch
                {
                    long l => l == long.MinValue ? throw new JinjaRuntimeException("integer overflow in abs", line) : (object)Math.Abs(l),
                    double d => Math.Abs(d),
                    bool b => b ? 1L : 0L,
                    _ => throw new JinjaRuntimeException($"bad operand type for abs(): '{JinjaValues.TypeName(value)}'", line),
                };
            case "int":
            {
                args.Check(name, 2, "default", "base");
                var fallback = args.Get(0, "default", 0L);
                return value switch
                {
                    long or bool => JinjaValues.ToLong(value),
                    double d when double.IsFinite(d) => (long)Math.Truncate(d),
                    string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l) => l,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d) => (long)Math.Truncate(d),
                    _ => fallback,
                };
            }
            case "float":
            {
                args.Check(name, 1, "default");
                var fallback = args.Get(0, "default", 0.0);
                return value switch
                {
                    long or bool or double => JinjaValues.ToDouble(value),
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
                    _ => fallback,
                };
            }
            case "round":
            {
                args.Check(name, 2, "precision", "method");
                int precision = (int)Math.Clamp(args.Get(0, "precision", 0L) is long p ? p : 0, 0, 15);
                var method = args.Get(1, "method", "common") as string;
                double number = JinjaValues.IsNumber(value) ? JinjaValues.ToDouble(value) : throw new JinjaRuntimeException("round needs a number", line);
                double scale = Math.Pow(10, precision);
                return method switch
                {
                    "common" => Math.Round(number, precision, MidpointRounding.ToEven), // Python's round()
                    "ceil" => Math.Ceiling(number * scale) / scale,
                    "floor" => Math.Floor(number * scale) / scale,
                    _ => throw new JinjaRuntimeException("round: method must be 'common', 'ceil' or 'floor'", line),
                };
            }
            case "sum":
            {
                args.Check(name, 2, "attribute", "start");
                var attribute = args.Get(0, "attribute", null);
                object? total = args.Get(1, "start", 0L);
                foreach (var item in JinjaValues.Iterate(value, line))
                    total = JinjaValues.Arithmetic("+", total, attribute is null ? item : Attribute(item, attribute, line), line);
                return total;
            }
            case "min":
            case "max":
            {
                args.Check(name, 2, "case_sensitive", "attribute");
                bool caseSensitive = JinjaValues.IsTrue(args.Get(0, "case_sensitive", false));
                var attribute = args.Get(1, "attribute", null);
                var items = JinjaValues.Iterate(value, line);
                if (items.Count == 0) return new JinjaUndefined($"{name} of an empty sequence");
                object? best = items[0];
                foreach (var item in items.Skip(1))
                {
                    int order = JinjaValues.Compare(SortKey(item, attribute, caseSensitive, line), SortKey(best, attribute, caseSensitive, line), "<", line);
                    if (name == "min" ? order < 0 : order > 0) best = item;
                }
                return best;
            }
            case "sort":
            {
                args.Check(name, 3, "reverse", "case_sensitive", "attribute");
                bool reverse = JinjaValues.IsTrue(args.Get(0, "reverse", false));
                bool caseSensitive = JinjaValues.IsTrue(args.Get(1, "case_sensitive", false));
                var attribute = args.Get(2, "attribute", null);
                var items = JinjaValues.Iterate(value, line).Select(i => (Key: SortKey(i, attribute, caseSensitive, line), Item: i)).ToList();
                var sorted = items.Order(Comparer<(object? Key, object? Item)>.Create((a, b) => JinjaValues.Compare(a.Key, b.Key, "<", line))).ToList();
                if (reverse) sorted = items.OrderDescending(Comparer<(object? Key, object? Item)>.Create((a, b) => JinjaValues.Compare(a.Key, b.Key, "<", line))).ToList();
                return sorted.Select(s => s.Item).ToList();
            }
            case "dictsort":
            {
                args.Check(name, 3, "case_sensitive", "by", "reverse");
                if (value is not Dictionary<string, object?> dict) throw new JinjaRuntimeException("dictsort needs a mapping", line);
                bool caseSensitive = JinjaValues.IsTrue(args.Get(0, "case_sensitive", false));
                string by = args.Get(1, "by", "key") as string ?? "key";
                bool reverse = JinjaValues.IsTrue(args.Get(2, "reverse", false));
                var comparer = Comparer<KeyValuePair<string, object?>>.Create((a, b) => JinjaValues.Compare(
                    SortKey(by == "value" ? a.Value : JinjaDictKeys.Decode(a.Key), null, caseSensitive, line),
                    SortKey(by == "value" ? b.Value : JinjaDictKeys.Decode(b.Key), null, caseSensitive, line), "<", line));
                var pairs = reverse ? dict.OrderDescending(comparer) : dict.Order(comparer);
                return pairs.Select(kv => (object?)new JinjaTuple([JinjaDictKeys.Decode(kv.Key), kv.Value])).ToList();
            }
            case "unique":
            {
                args.Check(name, 2, "case_sensitive", "attribute");
                bool caseSensitive = JinjaValues.IsTrue(args.Get(0, "case_sensitive", false));
                var attribute = args.Get(1, "attribute", null);
                var seen = new List<object?>();
                var result = new List<object?>();
                foreach (var item in JinjaValues.Iterate(value, line))
                {
                    var key = SortKey(item, attribute, caseSensitive, line);
                    if (seen.Any(s => JinjaValues.Equals(s, key))) continue;
                    seen.Add(key);
                    result.Add(item);
                }
                return new JinjaGenerator(result);
            }
            case "wordcount":
                args.Check(name, 0);
                return (long)Text(value, name, line).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            case "escape":
            case "e":
                args.Check(name, 0);
                return JinjaValues.ToText(value).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&#34;").Replace("'", "&#39;");
        }
        throw new JinjaRuntimeException($"unknown filter '{name}'", line);
    }

    static string Text(object? value, string filter, int line) => value switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => JinjaValues.ToText(value),
    };

    /// <summary>Jinja's title filter: each word (after '-', whitespace or an opening bracket) capitalised, the rest lower-cased.</summary>
    static string Title(string s)
    {
        var text = new StringBuilder(s.Length);
        bool wordStart = true;
        foreach (var c in s)
        {
            bool separator = c == '-' || char.IsWhiteSpace(c) || c is '(' or '{' or '[' or '<';
            text.Append(wordStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            wordStart = separator;
        }
        return text.ToString();
    }

    static string Indent(string s, string indentation, bool first, bool blank)
    {
        var lines = SplitLines(s);
        string result;
        if (blank) result = string.Join("\n" + indentation, lines);
        else
        {
            result = lines.Count > 0 ? lines[0] : "";
            if (lines.Count > 1) result += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? indentation + l : l));
        }
        return first ? indentation + result : result;
    }

    static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] != '\n' && s[i] != '\r') continue;
            lines.Add(s[start..i]);
            if (s[i] == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
            start = i + 1;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    /// <summary>An item's attribute as Jinja's attribute filters read it: dotted paths, integer parts as indices.</summary>
    internal static object? Attribute(object? item, object? path, int line)
    {
        if (path is long index) return JinjaValues.GetItem(item, index, line);
        var text = path as string ?? throw new JinjaRuntimeException("attribute must be a string", line);
        object? value = item;
        foreach (var part in text.Split('.'))
            value = JinjaValues.GetItem(value, long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long i) ? i : part, line);
        return value;
    }

    static object? SortKey(object? item, object? attribute, bool caseSensitive, int line)
    {
        var key = attribute is null ? item : Attribute(item, attribute, line);
        return !caseSensitive && key is string s ? s.ToLowerInvariant() : key;
    }

    static object? Map(JinjaInterpreter interpreter, object? value, JinjaArguments args)
    {
        int line = args.Line;
        // Jinja's map yields nothing for a false value (None, undefined, empty).
        var items = JinjaValues.IsTrue(value) ? JinjaValues.Iterate(value, line) : [];
        if (args.Positional.Count == 0)
        {
            args.Check("map", 0, "attribute", "default");
            var attribute = args.Get(-1, "attribute", null) ?? throw new JinjaRuntimeException("map needs a filter name or attribute=", line);
            bool hasDefault = args.Has(-1, "default");
            var fallback = args.Get(-1, "default", null);
            return new JinjaGenerator(items.Select(i =>
            {
                var v = Attribute(i, attribute, line);
                return hasDefault && v is JinjaUndefined ? fallback : v;
            }));
        }
        var filter = args.Positional[0] as string ?? throw new JinjaRuntimeException("map: the filter name must be a string", line);
        var rest = new JinjaArguments(args.Positional.Skip(1).ToList(), args.Named, line);
        return new JinjaGenerator(items.Select(i => Apply(interpreter, filter, i, rest)));
    }

    static object? Select(object? value, JinjaArguments args, bool keep, bool byAttribute)
    {
        int line = args.Line;
        // Jinja's select filters yield nothing for a false value (None, undefined, empty).
        var items = JinjaValues.IsTrue(value) ? JinjaValues.Iterate(value, line) : [];
        int next = 0;
        object? attribute = null;
        if (byAttribute)
        {
            if (args.Positional.Count == 0) throw new JinjaRuntimeException("selectattr/rejectattr need an attribute name", line);
            attribute = args.Positional[next++];
        }
        string? test = next < args.Positional.Count ? args.Positional[next++] as string ?? throw new JinjaRuntimeException("the test name must be a string", line) : null;
        var testArguments = args.Positional.Skip(next).ToList();
        if (args.Named.Count > 0) throw new JinjaRuntimeException("select filters take no keyword arguments", line);
        return new JinjaGenerator(items.Where(i =>
        {
            var probe = byAttribute ? Attribute(i, attribute, line) : i;
            bool passes = test is null ? JinjaValues.IsTrue(probe) : JinjaTestFunctions.Run(test, probe, testArguments, line);
            return passes == keep;
        }).ToList());
    }
}
