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
            try
            {
                var json = JsonNode.Parse(text)!.AsObject();
                records.Add(json.ToDictionary(kv => kv.Key, kv => kv.Value is null ? double.NaN : kv.Value.GetValue<double>()));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                throw new PargsException($"{path}:{line}: expected a JSON object of numbers ({e.Message})");
            }
        }
        return records;
    }
}
