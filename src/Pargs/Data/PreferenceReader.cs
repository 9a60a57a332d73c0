using System.Text.Json;

namespace Pargs.Data;

/// <summary>
/// Reads preference pairs from a .jsonl or .jsonl.gz file in any format of <see cref="PreferenceFormat"/>.
/// The format is detected once per file, from the first valid row, unless forced. Every problem is reported as
/// "<c>file:line: field '…' …(expected …)</c>"; bad rows fail the read or are skipped and counted.
/// </summary>
public static class PreferenceReader
{
    public static PreferenceReadResult Read(string path, PreferenceReadOptions? options = null)
    {
        options ??= new PreferenceReadOptions();
        var format = options.Format;
        var pairs = new List<PreferencePair>();
        var skipped = new List<SkippedRow>();
        int rowsRead = 0;

        if (options.MaxRowBytes < 1) throw new PargsException($"MaxRowBytes must be positive, got {options.MaxRowBytes}");
        foreach (var (line, text, bytes) in JsonlLines.Read(path, options.MaxRowBytes))
        {
            if (text is not null && string.IsNullOrWhiteSpace(text)) continue; // blank lines (e.g. a trailing newline) are not rows
            rowsRead++;
            try
            {
                if (text is null)
                    throw new BadRowException(BadRowReason.TooLong, $"the row is {bytes} bytes, over the limit of {options.MaxRowBytes} bytes per row");
                using var document = ParseJson(text);
                var rowFormat = format == PreferenceFormat.Auto ? PreferenceRowParser.Detect(document.RootElement) : format;
                pairs.Add(PreferenceRowParser.Parse(document.RootElement, rowFormat, options.Template, line));
                format = rowFormat; // the first valid row fixes the format for the rest of the file
            }
            catch (BadRowException bad)
            {
                string message = $"{path}:{line}: {bad.Message}";
                if (options.OnBadRow == BadRowPolicy.Fail)
                    throw new PargsException(message + $" (set {options.SkipSetting} to leave such rows out and count them)");
                skipped.Add(new SkippedRow(line, bad.Reason, message));
            }
        }

        var report = new PreferenceReadReport(path, format, rowsRead, pairs.Count, skipped);
        if (pairs.Count == 0)
        {
            string reasons = string.Join(", ", report.SkippedByReason.Select(kv => $"{kv.Value} {kv.Key}"));
            throw new PargsException(
                $"{path}: no valid preference pairs (read {rowsRead} rows{(skipped.Count > 0 ? $"; skipped {reasons}" : "")}); expected at least one.");
        }
        return new PreferenceReadResult(pairs, report);
    }

    static JsonDocument ParseJson(string text)
    {
        try
        {
            var document = JsonDocument.Parse(text);
            if (!Pargs.Json.CheckedJson.StringsAreValid(document.RootElement, out string? problem))
            {
                document.Dispose();
                throw new BadRowException(BadRowReason.InvalidJson, problem!);
            }
            return document;
        }
        catch (JsonException e)
        {
            throw new BadRowException(BadRowReason.InvalidJson, $"invalid JSON at byte {e.BytePositionInLine} (expected one JSON object per line): {e.Message}");
        }
    }
}
