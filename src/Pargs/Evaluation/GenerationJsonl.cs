using System.Text;
using System.Text.Json;

namespace Pargs.Evaluation;

/// <summary>Reads and writes <see cref="GenerationRecord"/> files: one JSON object per line, UTF-8.</summary>
public static class GenerationJsonl
{
    private static readonly JsonSerializerOptions Options = new()
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never,
        // NaN/Infinity round-trip as "NaN"/"Infinity" instead of failing the whole write.
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Longest generation record read (a few thousand tokens of output is ~20 KB).</summary>
    public const int MaxLineBytes = 16 << 20;

    /// <summary>
    /// Every non-blank line must be a JSON object with string <c>instruction</c> and <c>output</c> and a
    /// <c>method</c> or <c>generator</c>; otherwise a <see cref="PargsException"/> names file and line.
    /// </summary>
    public static List<GenerationRecord> Read(string path)
    {
        if (Directory.Exists(path)) throw new PargsException($"{path}: is a folder; expected a generations file (JSONL).");
        if (!File.Exists(path)) throw new PargsException($"{path}: generations file not found.");
        var records = new List<GenerationRecord>();
        // Strict UTF-8 (invalid bytes are refused with the line number, not replaced by U+FFFD) and a cap per line.
        foreach (var (lineNumber, text, bytes) in Pargs.Data.JsonlLines.Read(path, MaxLineBytes, "a generations file (JSONL)"))
        {
            string line = text ?? throw new PargsException($"{path}:{lineNumber}: the line is {bytes} bytes, over the limit of {MaxLineBytes} bytes per generation record.");
            if (line.Trim().Length == 0) continue;
            records.Add(ParseLine(path, lineNumber, line));
        }
        return records;
    }

    /// <summary>One line of a generations file (<paramref name="path"/>:<paramref name="lineNumber"/> for the error messages).</summary>
    public static GenerationRecord ParseLine(string path, int lineNumber, string line)
    {
        GenerationRecord? record;
        try
        {
            using (var doc = JsonDocument.Parse(line))
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new PargsException($"{path}:{lineNumber}: expected a JSON object per line, got {doc.RootElement.ValueKind}.");
                foreach (var field in new[] { "instruction", "output" })
                    if (!doc.RootElement.TryGetProperty(field, out var value) || value.ValueKind != JsonValueKind.String)
                        throw new PargsException($"{path}:{lineNumber}: field '{field}' is missing or not a string.");
            }
            record = JsonSerializer.Deserialize<GenerationRecord>(line, Options);
        }
        catch (JsonException e) when (e.Path is { Length: > 2 } at && at.StartsWith("$."))
        {
            // System.Text.Json names .NET types ("System.Nullable`1[System.Double]"); say it in the file's terms.
            string field = at[2..];
            string expected = field is "k" or "seed" or "tokens" ? "a whole number" : field is "w" or "reward" or "seconds" ? "a number" : "a string";
            throw new PargsException($"{path}:{lineNumber}: field '{field}' has a value of the wrong type (expected {expected}).", e);
        }
        catch (JsonException e)
        {
            throw new PargsException($"{path}:{lineNumber}: invalid generation record: {e.Message}", e);
        }
        if (record == null || record.MethodName.Length == 0)
            throw new PargsException($"{path}:{lineNumber}: a generation needs a 'method' (or 'generator') name.");
        return record;
    }

    /// <summary>A record as the one line <see cref="Write"/> writes for it (without the newline).</summary>
    public static string Format(GenerationRecord record) => JsonSerializer.Serialize(record, Options);

    /// <summary>
    /// Writes all records atomically (temporary file, then rename). A device such as /dev/stdout is written in
    /// place: a rename would replace the device with a regular file.
    /// </summary>
    public static void Write(string path, IEnumerable<GenerationRecord> records)
    {
        Pargs.IO.AtomicFile.WriteText(path, writer =>
        {
            foreach (var record in records)
            {
                writer.Write(Format(record));
                writer.Write('\n');
            }
        });
    }

}
