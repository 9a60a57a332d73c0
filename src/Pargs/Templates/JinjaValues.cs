using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace Pargs.Templates;

/// <summary>
/// Python's semantics for template values. Values are: null (None), <see cref="JinjaUndefined"/>, bool, long,
/// double, string, <c>List&lt;object?&gt;</c> (list or tuple), <c>Dictionary&lt;string, object?&gt;</c> (dict, in
/// insertion order), <see cref="JinjaNamespace"/>, <see cref="JinjaLoop"/> and <see cref="IJinjaCallable"/>.
/// Strings are indexed, sliced and measured in code points, as Python's str is.
/// </summary>
static class JinjaValues
{
    public static bool IsTrue(object? value) => value switch
    {
        null => false,
        JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        JinjaGenerator => true,
        List<object?> list => list.Count > 0,
        Dictionary<string, object?> dict => dict.Count > 0,
        _ => true,
    };

    public static bool IsNumber(object? value) => value is long or double or bool;

    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        JinjaUndefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        JinjaGenerator => "generator",
        JinjaTuple => "tuple",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        JinjaNamespace => "Namespace",
        JinjaLoop => "LoopContext",
        IJinjaCallable => "function",
        _ => value.GetType().Name,
    };

    /// <summary>Python's <c>str(value)</c>, which is what <c>{{ value }}</c> prints.</summary>
    public static string ToText(object? value) => value switch
    {
        string s => s,
        JinjaUndefined => "",
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatFloat(d),
        _ => Repr(value),
    };

    /// <summary>Python's <c>repr(value)</c>, as lists and dicts print their items.</summary>
    public static string Repr(object? value)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        switch (value)
        {
            case string s: return ReprString(s);
            case JinjaGenerator: return "<generator object>";
            case JinjaTuple tuple: return "(" + string.Join(", ", tuple.Select(Repr)) + (tuple.Count == 1 ? ",)" : ")");
            case List<object?> list: return "[" + string.Join(", ", list.Select(Repr)) + "]";
            case Dictionary<string, object?> dict:
                return "{" + string.Join(", ", dict.Select(kv => Repr(JinjaDictKeys.Decode(kv.Key)) + ": " + Repr(kv.Value))) + "}";
            case JinjaNamespace ns:
                return "<Namespace " + string.Join(", ", ns.Attributes.Select(kv => kv.Key + "=" + Repr(kv.Value))) + ">";
            case JinjaUndefined: return "Undefined";
            case IJinjaCallable: return "<function>";
            case JinjaLoop: return "<LoopContext>";
            default: return ToText(value);
        }
    }

    static string ReprString(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var text = new StringBuilder().Append(quote);
        foreach (var c in s)
        {
            switch (c)
            {
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                default:
                    if (c == quote) text.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f) text.Append($"\\x{(int)c:x2}");
                    else text.Append(c);
                    break;
            }
        }
        return text.Append(quote).ToString();
    }

    /// <summary>Python's float repr: shortest round-trip digits, always with a '.0' or an exponent.</summary>
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        double magnitude = Math.Abs(d);
        if (d == Math.Floor(d) && magnitude < 1e16) return d.ToString("F0", CultureInfo.InvariantCulture) + ".0";
        var r = d.ToString("R", CultureInfo.InvariantCulture);
        int ePos = r.IndexOf('E');
        if (ePos < 0) return r;
        // Python writes the exponent with a sign and at least two digits: 1e+16, 1e-05.
        int exponent = int.Parse(r[(ePos + 1)..], CultureInfo.InvariantCulture);
        return r[..ePos] + "e" + (exponent < 0 ? "-" : "+") + Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture);
    }

    // ---------- code points ----------

    public static int[] CodePoints(string s)
    {
        var points = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                points.Add(char.ConvertToUtf32(s[i], s[i + 1]));
                i++;
            }
            else points.Add(s[i]);
        }
        return [.. points];
    }

    public static string FromCodePoints(IEnumerable<int> points)
    {
        var text = new StringBuilder();
        foreach (var p in points)
        {
            if (p > 0xFFFF) text.Append(char.ConvertFromUtf32(p));
            else text.Append((char)p);
        }
        return text.ToString();
    }

    public static int CodePointLength(string s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            n++;
        }
        return n;
    }

    // ---------- containers ----------

    /// <summary>The items a for loop (or a filter) walks: list items, dict keys, a string's characters; undefined is empty.</summary>
    public static IReadOnlyList<object?> Iterate(object? value, int line) => value switch
    {
        List<object?> list => list,
        Dictionary<string, object?> dict => dict.Keys.Select(JinjaDictKeys.Decode).ToList(),
        string s => CodePoints(s).Select(p => (object?)FromCodePoints([p])).ToList(),
        JinjaUndefined => [],
        _ => throw new JinjaRuntimeException($"'{TypeName(value)}' object is not iterable", line),
    };

    public static long Length(object? value, int line) => value switch
    {
        string s => CodePointLength(s),
        JinjaGenerator => throw new JinjaRuntimeException("object of type 'generator' has no len() (pipe it through | list first)", line),
        List<object?> list => list.Count,
        Dictionary<string, object?> dict => dict.Count,
        JinjaNamespace ns => ns.Attributes.Count,
        JinjaUndefined => 0,
        _ => throw new JinjaRuntimeException($"object of type '{TypeName(value)}' has no len()", line),
    };

    /// <summary><c>value.name</c>: Jinja tries the attribute first (dict and str methods), then the item.</summary>
    public static object? GetAttribute(object? value, string name, int line)
    {
        switch (value)
        {
            case JinjaUndefined undefined: throw undefined.Error(line);
            case JinjaNamespace ns:
                return ns.Attributes.TryGetValue(name, out var v) ? v : new JinjaUndefined($"'{name}' (an attribute of a namespace)");
            case JinjaLoop loop: return loop.Attribute(name, line);
            case Dictionary<string, object?> dict:
                if (JinjaMethods.HasMethod(value, name)) return new JinjaBoundMethod(value, name);
                return dict.TryGetValue(JinjaDictKeys.Encode(name, line), out var item) ? item : new JinjaUndefined($"'dict object' has no attribute '{name}'; it");
            default:
                if (JinjaMethods.HasMethod(value, name)) return new JinjaBoundMethod(value, name);
                return new JinjaUndefined($"'{TypeName(value)} object' has no attribute '{name}'; it");
        }
    }

    /// <summary><c>value[key]</c>: Jinja tries the item first, then the attribute.</summary>
    public static object? GetItem(object? value, object? key, int line)
    {
        switch (value)
        {
            case JinjaUndefined undefined: throw undefined.Error(line);
            case Dictionary<string, object?> dict:
                if (JinjaDictKeys.Find(dict, key, line) is { } stored) return dict[stored];
                if (key is string name && JinjaMethods.HasMethod(value, name)) return new JinjaBoundMethod(value, name);
                return new JinjaUndefined($"'dict object' has no attribute {Repr(key)}; it");
            case JinjaGenerator:
                return new JinjaUndefined($"'generator' object is not subscriptable; item {Repr(key)}");
            case List<object?> list when key is long or bool:
            {
                long i = ToLong(key);
                if (i < 0) i += list.Count;
                return i >= 0 && i < list.Count ? list[(int)i] : new JinjaUndefined($"list index {ToText(key)}");
            }
            case string s when key is long or bool:
            {
                var points = CodePoints(s);
                long i = ToLong(key);
                if (i < 0) i += points.Length;
                return i >= 0 && i < points.Length ? FromCodePoints([points[i]]) : new JinjaUndefined($"string index {ToText(key)}");
            }
            default:
                if (key is string attribute) return GetAttribute(value, attribute, line);
                return new JinjaUndefined($"'{TypeName(value)} object' has no item {Repr(key)}; it");
        }
    }

    public static object? Slice(object? value, object? start, object? stop, object? step, int line)
    {
        long? Bound(object? v) => v is null or JinjaUndefined ? null
            : v is long or bool ? ToLong(v)
            : throw new JinjaRuntimeException("slice indices must be integers or None", line);
        long stepValue = Bound(step) ?? 1;
        if (stepValue == 0) throw new JinjaRuntimeException("slice step cannot be zero", line);
        switch (value)
        {
            case JinjaGenerator: throw new JinjaRuntimeException("'generator' object is not subscriptable", line);
            case List<object?> list:
                return SliceIndices(list.Count, Bound(start), Bound(stop), stepValue).Select(i => list[i]).ToList();
            case string s:
            {
                var points = CodePoints(s);
                return FromCodePoints(SliceIndices(points.Length, Bound(start), Bound(stop), stepValue).Select(i => points[i]));
            }
            case JinjaUndefined undefined: throw undefined.Error(line);
            default: throw new JinjaRuntimeException($"'{TypeName(value)}' object is not subscriptable", line);
        }
    }

    /// <summary>The indices Python's <c>slice(start, stop, step).indices(count)</c> walks.</summary>
    static IEnumerable<int> SliceIndices(int count, long? start, long? stop, long step)
    {
        // A step past the length behaves as the length itself; clamping it keeps i + step from overflowing.
        step = Math.Clamp(step, -(long)count - 1, (long)count + 1);
        long Clamp(long v, long low, long high) => Math.Max(low, Math.Min(high, v));
        long first, end;
        if (step > 0)
        {
            first = start is long a ? Clamp(a < 0 ? a + count : a, 0, count) : 0;
            end = stop is long b ? Clamp(b < 0 ? b + count : b, 0, count) : count;
            for (long i = first; i < end; i += step) yield return (int)i;
        }
        else
        {
            first = start is long a ? Clamp(a < 0 ? a + count : a, -1, count - 1) : count - 1;
            end = stop is long b ? Clamp(b < 0 ? b + count : b, -1, count - 1) : -1;
            for (long i = first; i > end; i += step) yield return (int)i;
        }
    }

    // ---------- comparison and arithmetic ----------

    public static long ToLong(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        _ => throw new InvalidOperationException("not an integer"),
    };

    public static double ToDouble(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => d,
        _ => throw new InvalidOperationException("not a number"),
    };

    public static new bool Equals(object? a, object? b)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        if (a is JinjaUndefined || b is JinjaUndefined) return a is JinjaUndefined && b is JinjaUndefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        if (a is string sa && b is string sb) return string.Equals(sa, sb, StringComparison.Ordinal);
        if (a is JinjaGenerator || b is JinjaGenerator) return ReferenceEquals(a, b);
        if (a is List<object?> la && b is List<object?> lb)
        {
            if (la.Count != lb.Count) return false;
            for (int i = 0; i < la.Count; i++) if (!Equals(la[i], lb[i])) return false;
            return true;
        }
        if (a is Dictionary<string, object?> da && b is Dictionary<string, object?> db)
            return da.Count == db.Count && da.All(kv => db.TryGetValue(kv.Key, out var v) && Equals(kv.Value, v));
        return ReferenceEquals(a, b);
    }

    /// <summary>Python's ordering (&lt;, &gt;...) between numbers, strings (by code point) or lists.</summary>
    public static int Compare(object? a, object? b, string op, int line)
    {
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a).CompareTo(ToDouble(b)) : ToLong(a).CompareTo(ToLong(b));
        if (a is string sa && b is string sb) return CompareCodePoints(sa, sb);
        if (a is List<object?> la && b is List<object?> lb)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (Equals(la[i], lb[i])) continue;
                return Compare(la[i], lb[i], op, line);
            }
            return la.Count.CompareTo(lb.Count);
        }
        throw new JinjaRuntimeException($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'", line);
    }

    /// <summary>Python orders strings by code point (UTF-16 order differs for characters beyond U+FFFF).</summary>
    static int CompareCodePoints(string a, string b)
    {
        var x = a.EnumerateRunes();
        var y = b.EnumerateRunes();
        while (true)
        {
            bool hasX = x.MoveNext(), hasY = y.MoveNext();
            if (!hasX || !hasY) return hasX.CompareTo(hasY);
            int order = x.Current.Value.CompareTo(y.Current.Value);
            if (order != 0) return order;
        }
    }

    public static bool Contains(object? container, object? item, int line) => container switch
    {
        string s when item is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw new JinjaRuntimeException($"'in <string>' requires string as left operand, not {TypeName(item)}", line),
        List<object?> list => list.Any(x => Equals(x, item)),
        Dictionary<string, object?> dict => JinjaDictKeys.IsHashable(item)
            ? JinjaDictKeys.Find(dict, item, line) != null
            : throw new JinjaRuntimeException($"unhashable type: '{TypeName(item)}'", line),
        JinjaUndefined => false,
        _ => throw new JinjaRuntimeException($"argument of type '{TypeName(container)}' is not iterable", line),
    };

    public static object? Arithmetic(string op, object? a, object? b, int line)
    {
        if (a is JinjaUndefined ua) throw ua.Error(line);
        if (b is JinjaUndefined ub) throw ub.Error(line);
        if (IsNumber(a) && IsNumber(b))
        {
            bool floating = a is double || b is double || op == "/";
            if (floating) return FloatArithmetic(op, ToDouble(a), ToDouble(b), line);
            long x = ToLong(a), y = ToLong(b);
            try
            {
                checked
                {
                    switch (op)
                    {
                        case "+": return x + y;
                        case "-": return x - y;
                        case "*": return x * y;
                        case "//":
                            if (y == 0) throw new JinjaRuntimeException("integer division by zero", line);
                            return FloorDiv(x, y);
                        case "%":
                            if (y == 0) throw new JinjaRuntimeException("integer modulo by zero", line);
                            return x - FloorDiv(x, y) * y;
                        case "**":
                            if (y < 0) return Math.Pow(x, y);
                            long result = 1;
                            for (long i = 0; i < y; i++) result *= x;
                            return result;
                    }
                }
            }
            catch (OverflowException) { throw new JinjaRuntimeException($"integer overflow in '{op}'", line); }
        }
        switch (op)
        {
            case "+" when a is string sa && b is string sb: return sa + sb;
            case "+" when a is List<object?> la && b is List<object?> lb && a is not JinjaGenerator && b is not JinjaGenerator: return la.Concat(lb).ToList();
            case "*" when a is string s && b is long or bool: return Repeat(s, ToLong(b), line);
            case "*" when b is string s && a is long or bool: return Repeat(s, ToLong(a), line);
            case "*" when a is List<object?> l && b is long or bool: return RepeatList(l, ToLong(b), line);
            case "%" when a is string:
                throw new JinjaRuntimeException("printf-style '%' string formatting is not supported", line);
        }
        throw new JinjaRuntimeException($"unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'", line);
    }

    static long FloorDiv(long x, long y)
    {
        long q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) q--;
        return q;
    }

    static object FloatArithmetic(string op, double x, double y, int line)
    {
        switch (op)
        {
            case "+": return x + y;
            case "-": return x - y;
            case "*": return x * y;
            case "/":
                if (y == 0) throw new JinjaRuntimeException("division by zero", line);
                return x / y;
            case "//":
                if (y == 0) throw new JinjaRuntimeException("float floor division by zero", line);
                return Math.Floor(x / y);
            case "%":
                if (y == 0) throw new JinjaRuntimeException("float modulo", line);
                return x - Math.Floor(x / y) * y;
            case "**": return Math.Pow(x, y);
        }
        throw new JinjaRuntimeException($"unknown operator {op}", line);
    }

    static string Repeat(string s, long times, int line)
    {
        if (times <= 0) return "";
        if (times > JinjaLimits.MaxOutputChars || s.Length * times > JinjaLimits.MaxOutputChars) throw new JinjaRuntimeException($"string repetition beyond {JinjaLimits.MaxOutputChars} characters", line);
        return string.Concat(Enumerable.Repeat(s, (int)times));
    }

    static List<object?> RepeatList(List<object?> list, long times, int line)
    {
        if (times <= 0) return [];
        if (times > JinjaLimits.MaxLoopIterations || list.Count * times > JinjaLimits.MaxLoopIterations) throw new JinjaRuntimeException($"list repetition beyond {JinjaLimits.MaxLoopIterations} items", line);
        var result = new List<object?>();
        for (long i = 0; i < times; i++) result.AddRange(list);
        return result;
    }
}
