using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Evaluation;

/// <summary>
/// Writes <see cref="MethodReportRow"/>s as a Markdown table (for humans, docs/) and as JSON with every
/// number (for scripts). Both files are written atomically. Undefined numbers (NaN) print as "–" in
/// Markdown and as null in JSON.
/// </summary>
public static class ReportWriter
{
    public static string ToMarkdown(IReadOnlyList<MethodReportRow> rows, string? baseline = null)
    {
        var vs = baseline == null ? "baseline" : baseline;
        // The KL column only when some row has a per-token policy (generation files written before it have none).
        bool kl = rows.Any(r => r.KlToBase is not null);
        var sb = new StringBuilder();
        sb.Append("| method | w | n | reward (mean ± SE) | win/tie/loss vs ").Append(vs)
          .Append(" | win+tie | diversity | coherence | ppl").Append(kl ? " | KL (nats)" : "").Append(" | tok/s | s/sample |\n");
        sb.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|").Append(kl ? "---:|" : "").Append("---:|---:|\n");
        foreach (var row in rows)
        {
            sb.Append("| ").Append(row.Method)
              .Append(" | ").Append(row.W.HasValue ? Number(row.W.Value, "0.###") : "–")
              .Append(" | ").Append(row.Count.ToString(CultureInfo.InvariantCulture))
              .Append(" | ").Append(row.Reward.Format())
              .Append(" | ").Append(row.VsBaseline == null ? "–" : $"{row.VsBaseline.Wins}/{row.VsBaseline.Ties}/{row.VsBaseline.Losses}")
              .Append(" | ").Append(row.VsBaseline == null ? "–" : Number(100 * row.VsBaseline.WinOrTieRate, "0.0") + "%")
              .Append(" | ").Append(Number(row.Diversity, "0.000"))
              .Append(" | ").Append(Number(row.Coherence, "0.000"))
              .Append(" | ").Append(Number(row.Perplexity, "0.00"))
              .Append(kl ? " | " + (row.KlToBase is { } k ? k.Format("0.00") : "–") : "")
              .Append(" | ").Append(Number(row.Throughput.TokensPerSecond, "0.0"))
              .Append(" | ").Append(Number(row.Throughput.SecondsPerSample, "0.000"))
              .Append(" |\n");
        }
        return sb.ToString();
    }

    public static JsonObject ToJson(IReadOnlyList<MethodReportRow> rows, string? baseline = null, string? rewardName = null)
    {
        var array = new JsonArray();
        foreach (var row in rows)
        {
            array.Add(new JsonObject
            {
                ["method"] = row.Method,
                ["w"] = row.W.HasValue ? Value(row.W.Value) : null,
                ["n"] = row.Count,
                ["reward_mean"] = Value(row.Reward.Mean),
                ["reward_sd"] = Value(row.Reward.StandardDeviation),
                ["reward_se"] = Value(row.Reward.StandardError),
                ["wins"] = row.VsBaseline?.Wins,
                ["ties"] = row.VsBaseline?.Ties,
                ["losses"] = row.VsBaseline?.Losses,
                ["win_rate"] = row.VsBaseline == null ? null : Value(row.VsBaseline.WinRate),
                ["win_tie_rate"] = row.VsBaseline == null ? null : Value(row.VsBaseline.WinOrTieRate),
                ["diversity"] = Value(row.Diversity),
                ["coherence"] = Value(row.Coherence),
                ["perplexity"] = Value(row.Perplexity),
                ["kl_mean"] = row.KlToBase is { } k ? Value(k.Mean) : null,
                ["kl_se"] = row.KlToBase is { } kse ? Value(kse.StandardError) : null,
                ["tokens"] = row.Throughput.Tokens,
                ["seconds"] = Value(row.Throughput.Seconds),
                ["tokens_per_second"] = Value(row.Throughput.TokensPerSecond),
                ["seconds_per_sample"] = Value(row.Throughput.SecondsPerSample),
            });
        }
        return new JsonObject { ["reward"] = rewardName, ["baseline"] = baseline, ["rows"] = array };
    }

    public static void WriteMarkdown(string path, IReadOnlyList<MethodReportRow> rows, string? baseline = null, string? title = null)
    {
        var text = (title == null ? "" : $"# {title}\n\n") + ToMarkdown(rows, baseline);
        WriteAtomically(path, text);
    }

    public static void WriteJson(string path, IReadOnlyList<MethodReportRow> rows, string? baseline = null, string? rewardName = null) =>
        WriteAtomically(path, ToJson(rows, baseline, rewardName).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    private static void WriteAtomically(string path, string text) => Pargs.IO.AtomicFile.WriteAllText(path, text);

    private static JsonNode? Value(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;

    private static string Number(double x, string format) => MeanWithError.FormatNumber(x, format);
}
