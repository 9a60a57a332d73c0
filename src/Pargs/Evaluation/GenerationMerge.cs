using System.Globalization;

namespace Pargs.Evaluation;

/// <summary>
/// `pargs merge`: joins the output files of a job's shards (`generate --shard i/n`) into the file the unsharded job
/// writes. Lines are copied as read, in prompt order, so the merge of shards written with `--no-timings` is byte for byte
/// the unsharded run's file. Refused: a file that is not a generations file, records without a numeric prompt_id, a
/// prompt twice, a gap between slices, and slices of different jobs (method, k, w, seed or generator differ).
/// </summary>
public static class GenerationMerge
{
    /// <summary>The merged lines, in prompt order; <paramref name="expectRows"/> (when given) must be their number.</summary>
    public static IReadOnlyList<string> Merge(IReadOnlyList<string> files, int? expectRows = null)
    {
        if (files.Count == 0) throw new PargsException("merge: give the shard files to join");
        if (files.GroupBy(Path.GetFullPath).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new PargsException($"{twice.First()}: given twice");
        var rows = new List<(long PromptId, string Line, string Where, GenerationRecord Record)>();
        foreach (var file in files)
        {
            if (Directory.Exists(file)) throw new PargsException($"{file}: is a folder; expected a generations file (JSONL).");
            if (!File.Exists(file)) throw new PargsException($"{file}: generations file not found.");
            long? previous = null;
            foreach (var (lineNumber, text, bytes) in Pargs.Data.JsonlLines.Read(file, GenerationJsonl.MaxLineBytes, "a generations file (JSONL)"))
            {
                string line = text ?? throw new PargsException($"{file}:{lineNumber}: the line is {bytes} bytes, over the limit of {GenerationJsonl.MaxLineBytes} bytes per generation record.");
                if (line.Trim().Length == 0) continue;
                var record = GenerationJsonl.ParseLine(file, lineNumber, line);
                if (!long.TryParse(record.PromptId, NumberStyles.None, CultureInfo.InvariantCulture, out long id))
                    throw new PargsException($"{file}:{lineNumber}: prompt_id {(record.PromptId is null ? "is missing" : $"\"{record.PromptId}\" is not a row number")}; only files `pargs generate` wrote can be merged");
                if (previous is { } p && id != p + 1)
                    throw new PargsException($"{file}:{lineNumber}: prompt_id {id} follows {p}; a shard's rows are consecutive");
                previous = id;
                rows.Add((id, line, $"{file}:{lineNumber}", record));
            }
        }
        if (rows.Count == 0) throw new PargsException("merge: the files hold no generations");
        var first = rows[0].Record;
        foreach (var (_, _, where, r) in rows)
        {
            string? Differs() =>
                r.Method != first.Method ? "method" : r.K != first.K ? "k" : r.W != first.W ? "w" : r.Seed != first.Seed ? "seed" : r.Generator != first.Generator ? "generator" : null;
            if (Differs() is { } field)
                throw new PargsException($"{where}: {field} differs from {rows[0].Where}; these are slices of different jobs");
        }
        rows.Sort((a, b) => a.PromptId.CompareTo(b.PromptId));
        for (int i = 0; i < rows.Count; i++)
        {
            if (rows[i].PromptId == i) continue;
            if (i > 0 && rows[i].PromptId == rows[i - 1].PromptId)
                throw new PargsException($"{rows[i].Where}: prompt {rows[i].PromptId} is also in {rows[i - 1].Where}; a shard was given twice or slices overlap");
            throw new PargsException($"merge: no row for prompt {i} (rows jump to {rows[i].PromptId} at {rows[i].Where}); a shard is missing");
        }
        if (expectRows is { } expected && rows.Count != expected)
            throw new PargsException($"merge: {rows.Count} rows, --expect-rows says {expected}; a shard is missing");
        return rows.Select(r => r.Line).ToList();
    }
}
