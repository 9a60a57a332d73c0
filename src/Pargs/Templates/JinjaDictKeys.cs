using System.Globalization;

namespace Pargs.Templates;

/// <summary>
/// Python dicts take any hashable key (<c>{512: 128}</c> appears in real templates); template dicts are
/// <c>Dictionary&lt;string, object?&gt;</c>, so a non-string key is stored under a string that cannot be a
/// user's key (it starts with NUL) and decoded back whenever keys are read. As in Python, 1, 1.0 and True are
/// the same key, and the first one stored is the one printed.
/// </summary>
static class JinjaDictKeys
{
    const char Marker = '\0';

    public static bool IsHashable(object? key) => key is null or string or long or double or bool;

    /// <summary>The stored form of a new key, by its own type (so it prints back as written: 1, 1.0 or True).</summary>
    public static string Encode(object? key, int line) => key switch
    {
        string s => s.Length > 0 && s[0] == Marker ? Marker + "s" + s : s,
        null => Marker + "n",
        bool b => Marker + "b" + (b ? "1" : "0"),
        long l => Marker + "i" + l.ToString(CultureInfo.InvariantCulture),
        double d => Marker + "f" + d.ToString("R", CultureInfo.InvariantCulture),
        _ => throw new JinjaRuntimeException($"unhashable type: '{JinjaValues.TypeName(key)}' as a dict key", line),
    };

    /// <summary>Every stored form a key equal to <paramref name="key"/> may have (Python: 1 == 1.0 == True).</summary>
    static IEnumerable<string> Equivalents(object? key, int line)
    {
        if (key is not (bool or long or double))
        {
            yield return Encode(key, line);
            yield break;
        }
        double value = JinjaValues.ToDouble(key);
        if (value == Math.Floor(value) && Math.Abs(value) < 9e18)
        {
            long whole = (long)value;
            yield return Marker + "i" + whole.ToString(CultureInfo.InvariantCulture);
            if (whole is 0 or 1) yield return Marker + "b" + whole.ToString(CultureInfo.InvariantCulture);
        }
        yield return Marker + "f" + value.ToString("R", CultureInfo.InvariantCulture);
    }

    /// <summary>The stored key equal to <paramref name="key"/>, or null when the dict has none (or the key is unhashable).</summary>
    public static string? Find(Dictionary<string, object?> dict, object? key, int line)
    {
        if (!IsHashable(key)) return null;
        foreach (var candidate in Equivalents(key, line))
            if (dict.ContainsKey(candidate)) return candidate;
        return null;
    }

    /// <summary>Where to store <paramref name="key"/>: an equal key already there keeps its form, as in Python.</summary>
    public static string KeyFor(Dictionary<string, object?> dict, object? key, int line) => Find(dict, key, line) ?? Encode(key, line);

    public static object? Decode(string key)
    {
        if (key.Length == 0 || key[0] != Marker) return key;
        string rest = key[2..];
        return key[1] switch
        {
            's' => rest,
            'n' => null,
            'i' => long.Parse(rest, CultureInfo.InvariantCulture),
            'b' => rest == "1",
            _ => double.Parse(rest, CultureInfo.InvariantCulture),
        };
    }

    /// <summary>A key as Python's json.dumps writes it: strings as is, numbers and constants as their JSON text.</summary>
    public static string JsonKey(string key) => Decode(key) switch
    {
        string s => s,
        null => "null",
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => JinjaValues.FormatFloat(d),
        var other => JinjaValues.ToText(other),
    };
}
