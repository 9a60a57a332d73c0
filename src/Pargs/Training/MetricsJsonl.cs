using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Training;

/// <summary>metrics.jsonl: one JSON object per log step (TRL/Trainer key names), appended as training goes.</summary>
public static class MetricsJsonl
{
    public static string ToLine(IReadOnlyDictionary<string, double> record)
    {
        var json = new JsonObject();
        // step and epoch first, the rest alphabetically: easy to read with `head`.
        foreach (var key in record.Keys.OrderBy(k => k switch { "step" => 0, "epoch" => 1, _ => 2 }).ThenBy(k => k, StringComparer.Ordinal))
        {
            double value = record[key];
            json[key] = key == "step" ? JsonValue.Create((long)value) : double.IsFinite(value) ? JsonValue.Create(value) : null;
        }
        return json.ToJsonString();
    }

    public static void Append(string path, IReadOnlyDictionary<string, double> record)
        => File.AppendAllText(path, ToLine(record) + "\n");

    /// <summary>Replaces the file with exactly these records (a resumed run drops lines logged after its checkpoint).</summary>
    public static void Rewrite(string path, IEnumerable<IReadOnlyDictionary<string, double>> records)
    {
        Pargs.IO.AtomicFile.WriteAllLines(path, records.Select(ToLine));
    }

    public static List<IReadOnlyDictionary<string, double>> Read(string path)
    {
        var records = new List<IReadOnlyDictionary<string, double>>();
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            // Checked field by field: "null", [] or a string where a number belongs are one-line errors naming the line.
            var json = Pargs.Json.CheckedJson.Parse(text, $"{path}:{line}", Pargs.Json.CheckedJsonLimits.Row);
            if (!json.IsObject) throw new PargsException($"{path}:{line}: expected a JSON object of numbers, got {json.Shown}");
            records.Add(json.Fields().ToDictionary(f => f.Name, f => f.Value.IsMissing ? double.NaN : f.Value.Double()));
        }
        return records;
    }
}
