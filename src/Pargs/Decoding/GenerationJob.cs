using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Pargs.Engine;
using Pargs.Evaluation;
using Pargs.Rewards;

namespace Pargs.Decoding;

/// <summary>What a generation job writes: the output file, how its rows are named, and which slice of the prompts it owns.</summary>
public sealed record GenerationJobSettings
{
    /// <summary>The JSONL file the finished job replaces atomically.</summary>
    public required string OutPath { get; init; }
    /// <summary>AlpacaEval's <c>generator</c> field of every record.</summary>
    public required string Generator { get; init; }
    /// <summary>Identifies the job (settings and prompts, <see cref="GenerationJob.Fingerprint"/>): a partial file is only
    /// resumed by the job that wrote it.</summary>
    public required string Fingerprint { get; init; }
    /// <summary>The slice of the prompts this run decodes (`--shard i/n`).</summary>
    public PromptShard Shard { get; init; } = PromptShard.Whole;
    /// <summary>Whether records carry their wall-clock <c>seconds</c>; without, two runs of one job write the same bytes.</summary>
    public bool Timings { get; init; } = true;
}

/// <summary>What a job did: records of its slice in prompt order, how many came from an earlier, interrupted run.</summary>
public sealed record GenerationJobOutcome(int Start, int Length, int Resumed, IReadOnlyList<GenerationRecord> Records);

/// <summary>
/// A generation job that writes a JSONL file and survives its own failure. Rows are appended, batch by batch, to a
/// partial file beside the output (<c>out.jsonl.&lt;fingerprint&gt;.partial</c>); the output itself appears only when the
/// whole slice is done, by an atomic rename, so a run that fails (a remote server that died, kill -9, a full disk)
/// never leaves a partial output file — and the same command run again resumes after the rows already written.
/// <para>Resuming gives the same bytes as an uninterrupted run: a run restarts at a batch boundary (whole batches are
/// appended; a torn last line or a partial batch is dropped and decoded again), so it decodes exactly the batches the
/// uninterrupted run decodes, and each row's random stream is keyed by its index in the whole prompt list.</para>
/// <para>The partial file is locked while a run writes it (an flock the kernel drops with the process): two runs of the
/// same job cannot interleave rows, while runs of different jobs writing one output path each keep their own partial
/// file and the last rename wins with a whole file.</para>
/// </summary>
public static class GenerationJob
{
    const string HeaderKey = "pargs_partial_generations";

    /// <summary>The partial file of the job with this fingerprint.</summary>
    public static string PartialPathFor(string outPath, string fingerprint) => $"{outPath}.{fingerprint[..Math.Min(12, fingerprint.Length)]}.partial";

    /// <summary>A job's identity: SHA-256 over its parts (the command line, the prompts, the model) in order.</summary>
    public static string Fingerprint(IEnumerable<string> parts)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var part in parts)
        {
            var bytes = Encoding.UTF8.GetBytes(part);
            sha.AppendData(BitConverter.GetBytes(bytes.Length)); // length-prefixed: ("ab", "c") ≠ ("a", "bc")
            sha.AppendData(bytes);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    public static GenerationJobOutcome Run(LanguageModelEngine engine, IRewardModel? rm, IReadOnlyList<string> prompts,
        DecodingOptions options, GenerationJobSettings job, IProgress<int>? promptsDone = null)
    {
        int batchSize = TextGenerator.BatchSizeFor(options);
        var (start, length) = job.Shard.Slice(prompts.Count, batchSize);
        if (DevicePaths.IsDevice(job.OutPath))
        {
            // /dev/stdout cannot be renamed over: written in place at the end, no partial file to resume from.
            var direct = Records(TextGenerator.Generate(engine, rm, prompts.Skip(start).Take(length).ToList(), options, promptsDone, firstPromptIndex: start), options, job);
            GenerationJsonl.Write(job.OutPath, direct);
            return new GenerationJobOutcome(start, length, 0, direct);
        }

        string partialPath = PartialPathFor(job.OutPath, job.Fingerprint);
        string full = Path.GetFullPath(job.OutPath);
        if (Directory.Exists(full)) throw new PargsException($"{job.OutPath}: is a folder, cannot write a file there");
        if (Path.GetDirectoryName(full) is { } folder) Directory.CreateDirectory(folder);
        FileStream partial;
        try
        {
            partial = new FileStream(partialPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new PargsException($"{partialPath}: another run of the same job is writing it; wait for it to end");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new PargsException($"{partialPath}: cannot write the partial output ({e.Message})", e);
        }

        var kept = new List<(GenerationRecord Record, string Line)>();
        using (partial)
        {
            long keepBytes = ReadPartial(partial, partialPath, job.Fingerprint, start, length, batchSize, kept);
            int resumed = kept.Count;
            partial.SetLength(keepBytes);
            partial.Seek(0, SeekOrigin.End);
            if (keepBytes == 0)
            {
                WriteLine(partial, JsonSerializer.Serialize(new Dictionary<string, object> { [HeaderKey] = 1, ["fingerprint"] = job.Fingerprint }));
                partial.Flush(flushToDisk: true);
            }
            promptsDone?.Report(resumed);
            try
            {
                TextGenerator.Generate(engine, rm, prompts.Skip(start + resumed).Take(length - resumed).ToList(), options,
                    promptsDone is null ? null : new InlineProgress<int>(d => promptsDone.Report(resumed + d)),
                    firstPromptIndex: start + resumed,
                    batchDone: batch =>
                    {
                        foreach (var record in Records(batch, options, job))
                        {
                            string line = GenerationJsonl.Format(record);
                            WriteLine(partial, line);
                            kept.Add((record, line));
                        }
                        partial.Flush(flushToDisk: true); // a batch is on disk before the next one starts
                    });
            }
            catch (PargsException e)
            {
                throw new PargsException($"{e.Message} — {kept.Count} of {length} rows are kept in {partialPath}; run the same command again to resume after them", e);
            }
            Pargs.IO.AtomicFile.WriteText(job.OutPath, writer =>
            {
                foreach (var (_, line) in kept)
                {
                    writer.Write(line);
                    writer.Write('\n');
                }
            });
            File.Delete(partialPath); // still locked by us: no other run of this job can have opened it
            return new GenerationJobOutcome(start, length, resumed, kept.Select(k => k.Record).ToList());
        }
    }

    static List<GenerationRecord> Records(IReadOnlyList<GenerationResult> results, DecodingOptions options, GenerationJobSettings job)
        => results.Select(r => Record(r, options, job.Generator, job.Timings)).ToList();

    /// <summary>A result as its JSONL record, with or without its wall-clock <c>seconds</c>.</summary>
    public static GenerationRecord Record(GenerationResult result, DecodingOptions options, string generator, bool timings)
    {
        var record = result.ToRecord(options, generator);
        return timings ? record : record with { Seconds = null };
    }

    static void WriteLine(FileStream stream, string line)
    {
        stream.Write(Encoding.UTF8.GetBytes(line));
        stream.WriteByte((byte)'\n');
    }

    /// <summary>
    /// Reads a partial file (header, then records of prompts start, start+1, … in order) into <paramref name="kept"/> and
    /// returns how many of its bytes to keep: whole batches only, without a torn last line. An empty file keeps nothing.
    /// </summary>
    static long ReadPartial(FileStream stream, string path, string fingerprint, int start, int length, int batchSize,
        List<(GenerationRecord Record, string Line)> kept)
    {
        var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
        var lines = new List<(string Text, long End)>();
        var buffer = new MemoryStream();
        long position = 0;
        int b;
        stream.Seek(0, SeekOrigin.Begin);
        var reader = new BufferedStream(stream, 1 << 16);
        while ((b = reader.ReadByte()) >= 0)
        {
            position++;
            if (b != '\n')
            {
                if (buffer.Length >= GenerationJsonl.MaxLineBytes)
                    throw new PargsException($"{path}:{lines.Count + 1}: a line over {GenerationJsonl.MaxLineBytes} bytes; this is not a partial file Pargs wrote (delete it to start over)");
                buffer.WriteByte((byte)b);
                continue;
            }
            string text;
            try { text = strict.GetString(buffer.GetBuffer(), 0, (int)buffer.Length); }
            catch (DecoderFallbackException) { throw new PargsException($"{path}:{lines.Count + 1}: invalid UTF-8; this is not a partial file Pargs wrote (delete it to start over)"); }
            lines.Add((text, position));
            buffer.SetLength(0);
        }
        // Bytes after the last newline are a line torn by a kill: dropped (decoded again).
        if (lines.Count == 0) return 0;

        try
        {
            using var header = JsonDocument.Parse(lines[0].Text);
            if (header.RootElement.ValueKind != JsonValueKind.Object || !header.RootElement.TryGetProperty(HeaderKey, out _))
                throw new PargsException($"{path}:1: not a partial generations file of Pargs (delete it to start over)");
            if (!header.RootElement.TryGetProperty("fingerprint", out var f) || f.ValueKind != JsonValueKind.String || f.GetString() != fingerprint)
                throw new PargsException($"{path}:1: the partial file of another job (other settings or prompts); delete it to start over");
        }
        catch (JsonException)
        {
            throw new PargsException($"{path}:1: not a partial generations file of Pargs (delete it to start over)");
        }

        long keepBytes = lines[0].End;
        var records = new List<(GenerationRecord, string, long)>();
        for (int i = 1; i < lines.Count && records.Count < length; i++)
        {
            GenerationRecord record;
            try { record = GenerationJsonl.ParseLine(path, i + 1, lines[i].Text); }
            catch (PargsException) when (i == lines.Count - 1) { break; } // a last line cut short before its newline was flushed
            string expected = (start + records.Count).ToString(CultureInfo.InvariantCulture);
            if (record.PromptId != expected)
                throw new PargsException($"{path}:{i + 1}: prompt_id {record.PromptId ?? "(none)"} where the job's row {expected} belongs; delete the file to start over");
            records.Add((record, lines[i].Text, lines[i].End));
        }
        // Only whole batches: a resumed run then decodes exactly the uninterrupted run's batches.
        int whole = records.Count == length ? length : records.Count / batchSize * batchSize;
        foreach (var (record, line, end) in records.Take(whole))
        {
            kept.Add((record, line));
            keepBytes = end;
        }
        return keepBytes;
    }
}
