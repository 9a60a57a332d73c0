using System.Text;
using System.Text.Json.Nodes;

namespace Pargs.Tests.Fuzzing;

/// <summary>
/// Seeded mutations of a valid input: binary ones (bit flips, interesting bytes, truncation, chunk deletion and
/// duplication, 4- and 8-byte windows overwritten with huge or boundary integers) and, for JSON, structural
/// ones (a value swapped for one of another type, huge numbers, deep nesting, a top-level non-object). The same
/// (seed, case) always gives the same bytes, so a failure is reproduced by its case number alone.
/// </summary>
public sealed class Mutator(int seed)
{
    static readonly ulong[] HugeIntegers =
    [
        0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, (1UL << 32) + 16,
        1UL << 40, 1UL << 62, (1UL << 63) - 1, 1UL << 63, ulong.MaxValue, ulong.MaxValue - 7,
    ];

    static readonly string[] HostileJsonValues =
    [
        "5", "-1", "0", "\"yes\"", "true", "null", "[null]", "[]", "{}", "1e39", "-1e39", "2e9", "4294967312", "1.5",
        "99999999999999999999999999", "1e400", "\"\"", "[1,2,3]", "{\"type\": 5}", "\"\\ud800\"", "-0", "1e-400",
    ];

    // Not HashCode.Combine: it is randomised per process, and a case must reproduce from its number.
    public Random RandomFor(int caseIndex) => new((int)((uint)seed * 2654435761u ^ (uint)caseIndex * 40503u) & 0x7FFFFFFF);

    /// <summary>One to four binary mutations of <paramref name="input"/>.</summary>
    public byte[] Binary(byte[] input, int caseIndex)
    {
        var random = RandomFor(caseIndex);
        var bytes = new List<byte>(input);
        int count = 1 + random.Next(4);
        for (int m = 0; m < count && bytes.Count > 0; m++)
        {
            // Headers are where structure lives: aim half the mutations at the first 512 bytes.
            int span = random.Next(2) == 0 ? Math.Min(512, bytes.Count) : bytes.Count;
            int at = random.Next(span);
            switch (random.Next(8))
            {
                case 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;
                case 1: bytes[at] = (byte)(random.Next(4) switch { 0 => 0, 1 => 0xFF, 2 => 0x7F, _ => 0x80 }); break;
                case 2: { int cut = random.Next(bytes.Count); bytes.RemoveRange(cut, bytes.Count - cut); break; } // truncation
                case 3: bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + random.Next(16))); break;
                case 4: bytes.InsertRange(at, bytes.GetRange(at, Math.Min(bytes.Count - at, 1 + random.Next(16)))); break;
                case 5: Overwrite(bytes, at, BitConverter.GetBytes(HugeIntegers[random.Next(HugeIntegers.Length)])); break;
                case 6: Overwrite(bytes, at, BitConverter.GetBytes((uint)HugeIntegers[random.Next(HugeIntegers.Length)])); break;
                default: bytes[at] = (byte)random.Next(256); break;
            }
        }
        return bytes.ToArray();
    }

    static void Overwrite(List<byte> bytes, int at, byte[] value)
    {
        for (int i = 0; i < value.Length && at + i < bytes.Count; i++) bytes[at + i] = value[i];
    }

    /// <summary>A structural JSON mutation of <paramref name="json"/> (or, one case in four, a binary one of its text).</summary>
    public byte[] Json(string json, int caseIndex)
    {
        var random = RandomFor(caseIndex);
        if (random.Next(4) == 0) return Binary(Encoding.UTF8.GetBytes(json), caseIndex);
        var root = JsonNode.Parse(json)!;
        switch (random.Next(10))
        {
            case 0: return Encoding.UTF8.GetBytes(random.Next(3) switch { 0 => "[]", 1 => "5", _ => "null" });
            case 1:
            {
                // Deep nesting around a value: far beyond any parser's depth limit.
                int depth = random.Next(2) == 0 ? 100 : 100_000;
                string deep = new string('[', depth) + "1" + new string(']', depth);
                return Encoding.UTF8.GetBytes(Replace(root, random, deep) ?? deep);
            }
            default:
            {
                int swaps = 1 + random.Next(3);
                string text = root.ToJsonString();
                for (int s = 0; s < swaps; s++)
                {
                    JsonNode? current;
                    try { current = JsonNode.Parse(text); }
                    catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException) { break; } // a swap made it invalid: keep it
                    if (current is null) break;
                    text = Replace(current, random, HostileJsonValues[random.Next(HostileJsonValues.Length)]) ?? text;
                }
                return Encoding.UTF8.GetBytes(text);
            }
        }
    }

    /// <summary>The document with one randomly chosen value (at any depth) replaced by <paramref name="rawValue"/>.</summary>
    static string? Replace(JsonNode root, Random random, string rawValue)
    {
        // An earlier swap may have put in text the node tree cannot re-serialise (a lone surrogate): no more swaps then.
        try { return ReplaceOne(root, random, rawValue); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException) { return null; }
    }

    static string? ReplaceOne(JsonNode root, Random random, string rawValue)
    {
        var slots = new List<(JsonNode Parent, string? Key, int Index)>();
        var stack = new Stack<JsonNode>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (node is JsonObject o)
                foreach (var (key, value) in o)
                {
                    slots.Add((o, key, -1));
                    if (value != null) stack.Push(value);
                }
            else if (node is JsonArray a)
                for (int i = 0; i < a.Count; i++)
                {
                    slots.Add((a, null, i));
                    if (a[i] is { } item) stack.Push(item);
                }
        }
        if (slots.Count == 0) return null;
        // Replace by a unique marker, then splice the raw text in (the raw value may not be valid JSON on its own).
        const string Marker = "\"@@PARGS_FUZZ@@\"";
        var (parent, k, index) = slots[random.Next(slots.Count)];
        if (parent is JsonObject obj) obj[k!] = "@@PARGS_FUZZ@@";
        else ((JsonArray)parent)[index] = "@@PARGS_FUZZ@@";
        return root.ToJsonString().Replace(Marker, rawValue);
    }
}
