using System.Globalization;
using System.Text;

namespace Pargs.Templates;

/// <summary>
/// The Python methods templates call on values: str (<c>startswith</c>, <c>split</c>, <c>strip</c>, <c>format</c>...),
/// dict (<c>items</c>, <c>get</c>, <c>keys</c>, <c>values</c>) and the read-only list methods. As in transformers'
/// immutable sandbox, methods that modify a list or dict are refused.
/// </summary>
static class JinjaMethods
{
    static readonly HashSet<string> StringMethods =
    [
        "startswith", "endswith", "split", "rsplit", "strip", "lstrip", "rstrip", "upper", "lower", "title",
        "capitalize", "replace", "format", "find", "rfind", "count", "join", "splitlines", "isdigit", "isalpha",
        "isalnum", "isspace", "islower", "isupper",
    ];
    static readonly HashSet<string> DictMethods = ["items", "keys", "values", "get"];
    static readonly HashSet<string> ListMethods = ["index", "count"];
    static readonly HashSet<string> MutatingMethods = ["append", "extend", "pop", "insert", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem"];

    public static bool HasMethod(object? target, string name) => target switch
    {
        string => StringMethods.Contains(name),
        Dictionary<string, object?> => DictMethods.Contains(name) || MutatingMethods.Contains(name),
        List<object?> => ListMethods.Contains(name) || MutatingMethods.Contains(name),
        _ => false,
    };

    public static object? Call(object? target, string name, JinjaArguments args)
    {
        int line = args.Line;
        if (MutatingMethods.Contains(name))
            throw new JinjaRuntimeException($"access to attribute '{name}' of '{JinjaValues.TypeName(target)}' object is unsafe (the template environment is immutable)", line);
        return target switch
        {
            string s => CallString(s, name, args),
            Dictionary<string, object?> dict => CallDict(dict, name, args),
            List<object?> list => CallList(list, name, args),
            _ => throw new JinjaRuntimeException($"'{JinjaValues.TypeName(target)}' object has no method '{name}'", line),
        };
    }

    static string Str(object? value, string method, int line) =>
        value as string ?? throw new JinjaRuntimeException($"{method}() expects a string argument, got {JinjaValues.TypeName(value)}", line);

    static object? CallString(string s, string name, JinjaArguments args)
    {
        int line = args.Line;
        switch (name)
        {
            case "startswith":
            case "endswith":
            {
                args.Check(name, 1);
                var probe = args.Get(0, "", null);
                IEnumerable<object?> options = probe is List<object?> tuple ? tuple : [probe];
                return options.Any(o => name == "startswith"
                    ? s.StartsWith(Str(o, name, line), StringComparison.Ordinal)
                    : s.EndsWith(Str(o, name, line), StringComparison.Ordinal));
            }
            case "split":
            case "rsplit":
            {
                args.Check(name, 2, "sep", "maxsplit");
                var separator = args.Get(0, "sep", null);
                long maxSplit = args.Get(1, "maxsplit", -1L) is long m ? m : -1;
                return Split(s, separator is null ? null : Str(separator, name, line), maxSplit, name == "rsplit", line);
            }
            case "strip":
            case "lstrip":
            case "rstrip":
            {
                args.Check(name, 1, "chars");
                var chars = args.Get(0, "chars", null);
                return Strip(s, chars is null ? null : Str(chars, name, line), name != "rstrip", name != "lstrip");
            }
            case "upper": args.Check(name, 0); return s.ToUpperInvariant();
            case "lower": args.Check(name, 0); return s.ToLowerInvariant();
            case "title": args.Check(name, 0); return Title(s);
            case "capitalize": args.Check(name, 0); return Capitalize(s);
            case "replace":
            {
                args.Check(name, 3, "count");
                var old = Str(args.Get(0, "", null), name, line);
                var replacement = Str(args.Get(1, "", null), name, line);
                long count = args.Get(2, "count", -1L) is long c ? c : -1;
                return Replace(s, old, replacement, count);
            }
            case "format": return Format(s, args);
            case "find":
            case "rfind":
            {
                args.Check(name, 1);
                var sub = Str(args.Get(0, "", null), name, line);
                int at = name == "find" ? s.IndexOf(sub, StringComparison.Ordinal) : s.LastIndexOf(sub, StringComparison.Ordinal);
                return at < 0 ? -1L : (long)JinjaValues.CodePointLength(s[..at]);
            }
            case "count":
            {
                args.Check(name, 1);
                var sub = Str(args.Get(0, "", null), name, line);
                if (sub.Length == 0) return (long)JinjaValues.CodePointLength(s) + 1;
                long n = 0;
                for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal)) n++;
                return n;
            }
            case "join":
            {
                args.Check(name, 1);
                var items = JinjaValues.Iterate(args.Get(0, "", null), line);
                return string.Join(s, items.Select(i => Str(i, name, line)));
            }
            case "splitlines":
                args.Check(name, 0);
                return SplitLines(s);
            case "isdigit": return s.Length > 0 && s.All(char.IsDigit);
            case "isalpha": return s.Length > 0 && s.All(char.IsLetter);
            case "isalnum": return s.Length > 0 && s.All(char.IsLetterOrDigit);
            case "isspace": return s.Length > 0 && s.All(char.IsWhiteSpace);
            case "islower": return s.Any(char.IsLetter) && !s.Any(char.IsUpper);
            case "isupper": return s.Any(char.IsLetter) && !s.Any(char.IsLower);
        }
        throw new JinjaRuntimeException($"'str' object has no method '{name}'", line);
    }

    static object? CallDict(Dictionary<string, object?> dict, string name, JinjaArguments args)
    {
        switch (name)
        {
            case "items":
                args.Check(name, 0);
                return dict.Select(kv => (object?)new JinjaTuple([JinjaDictKeys.Decode(kv.Key), kv.Value])).ToList();
            case "keys":
                args.Check(name, 0);
                return dict.Keys.Select(JinjaDictKeys.Decode).ToList();
            case "values":
                args.Check(name, 0);
                return dict.Values.ToList();
            case "get":
            {
                args.Check(name, 2);
                var key = args.Get(0, "", null);
                return JinjaDictKeys.Find(dict, key, args.Line) is { } stored ? dict[stored] : args.Get(1, "", null);
            }
        }
        throw new JinjaRuntimeException($"'dict' object has no method '{name}'", args.Line);
    }

    static object? CallList(List<object?> list, string name, JinjaArguments args)
    {
        args.Check(name, 1);
        var item = args.Get(0, "", null);
        if (name == "count") return (long)list.Count(x => JinjaValues.Equals(x, item));
        int at = list.FindIndex(x => JinjaValues.Equals(x, item));
        if (at < 0) throw new JinjaRuntimeException($"{JinjaValues.Repr(item)} is not in list", args.Line);
        return (long)at;
    }

    // ---------- helpers shared with the filters ----------

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        bool Strippable(char c) => chars is null ? char.IsWhiteSpace(c) : chars.Contains(c);
        int start = 0, end = s.Length;
        if (left) while (start < end && Strippable(s[start])) start++;
        if (right) while (end > start && Strippable(s[end - 1])) end--;
        return s[start..end];
    }

    public static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0) return old.Length == 0 ? InsertEverywhere(s, replacement, long.MaxValue) : s.Replace(old, replacement, StringComparison.Ordinal);
        if (old.Length == 0) return InsertEverywhere(s, replacement, count);
        var text = new StringBuilder();
        int from = 0;
        for (long n = 0; n < count; n++)
        {
            int at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0) break;
            text.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }
        return text.Append(s, from, s.Length - from).ToString();
    }

    static string InsertEverywhere(string s, string insert, long count)
    {
        var points = JinjaValues.CodePoints(s);
        var text = new StringBuilder();
        long n = 0;
        foreach (var p in points)
        {
            if (n++ < count) text.Append(insert);
            text.Append(JinjaValues.FromCodePoints([p]));
        }
        if (n < count) text.Append(insert);
        return text.ToString();
    }

    static List<object?> Split(string s, string? separator, long maxSplit, bool fromRight, int line)
    {
        if (separator is not null && separator.Length == 0) throw new JinjaRuntimeException("empty separator", line);
        List<string> parts;
        if (separator is null)
        {
            // Python: runs of whitespace separate, leading/trailing whitespace yields no empty parts.
            parts = [];
            var words = s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (maxSplit < 0 || words.Length <= maxSplit + 1) parts.AddRange(words);
            else if (!fromRight)
            {
                var rest = s.TrimStart();
                for (long i = 0; i < maxSplit; i++)
                {
                    int end = 0;
                    while (end < rest.Length && !char.IsWhiteSpace(rest[end])) end++;
                    parts.Add(rest[..end]);
                    rest = rest[end..].TrimStart();
                }
                if (rest.Length > 0) parts.Add(rest);
            }
            else
            {
                var rest = s.TrimEnd();
                var tail = new List<string>();
                for (long i = 0; i < maxSplit; i++)
                {
                    int start = rest.Length;
                    while (start > 0 && !char.IsWhiteSpace(rest[start - 1])) start--;
                    tail.Insert(0, rest[start..]);
                    rest = rest[..start].TrimEnd();
                }
                if (rest.Length > 0) parts.Add(rest);
                parts.AddRange(tail);
            }
        }
        else if (maxSplit < 0) parts = [.. s.Split(separator)];
        else if (!fromRight) parts = [.. s.Split(separator, (int)Math.Min(int.MaxValue, maxSplit + 1))];
        else
        {
            parts = [];
            var rest = s;
            for (long i = 0; i < maxSplit; i++)
            {
                int at = rest.LastIndexOf(separator, StringComparison.Ordinal);
                if (at < 0) break;
                parts.Insert(0, rest[(at + separator.Length)..]);
                rest = rest[..at];
            }
            parts.Insert(0, rest);
        }
        return parts.Cast<object?>().ToList();
    }

    static List<object?> SplitLines(string s)
    {
        var lines = new List<object?>();
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

    /// <summary>Python's str.title(): a letter after a non-letter is upper-cased, every other letter lower-cased.</summary>
    public static string Title(string s)
    {
        var text = new StringBuilder(s.Length);
        bool previousIsLetter = false;
        foreach (var c in s)
        {
            text.Append(previousIsLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousIsLetter = char.IsLetter(c);
        }
        return text.ToString();
    }

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>str.format with <c>{}</c>, <c>{0}</c> and <c>{name}</c> fields (no format specs), and <c>{{ }}</c> escapes.</summary>
    static string Format(string s, JinjaArguments args)
    {
        var text = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '{' && i + 1 < s.Length && s[i + 1] == '{') { text.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < s.Length && s[i + 1] == '}') { text.Append('}'); i++; continue; }
            if (c == '}') throw new JinjaRuntimeException("single '}' encountered in format string", args.Line);
            if (c != '{') { text.Append(c); continue; }
            int end = s.IndexOf('}', i);
            if (end < 0) throw new JinjaRuntimeException("single '{' encountered in format string", args.Line);
            var field = s[(i + 1)..end];
            if (field.Contains(':') || field.Contains('!'))
                throw new JinjaRuntimeException($"format field '{{{field}}}' with a conversion or format spec is not supported", args.Line);
            object? value;
            if (field.Length == 0) value = auto < args.Positional.Count ? args.Positional[auto++] : throw new JinjaRuntimeException("format(): not enough arguments", args.Line);
            else if (int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out int position))
                value = position < args.Positional.Count ? args.Positional[position] : throw new JinjaRuntimeException($"format(): no argument {position}", args.Line);
            else
            {
                var named = args.Named.FirstOrDefault(n => n.Key == field);
                if (named.Key is null) throw new JinjaRuntimeException($"format(): no argument named '{field}'", args.Line);
                value = named.Value;
            }
            text.Append(JinjaValues.ToText(value));
            i = end;
        }
        return text.ToString();
    }
}
