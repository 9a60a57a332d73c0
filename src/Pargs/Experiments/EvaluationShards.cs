using System.Text.Json;
using Pargs.Decoding;
using Pargs.Evaluation;
using Pargs.Json;
using Pargs.Rewards.Gold;

namespace Pargs.Experiments;

/// <summary>
/// An evaluation split over machines: `eval --shard i/n` scores the i-th of n contiguous slices of the records (the part
/// that costs model forwards: gold reward, base-LM log-probabilities, coherence) into a folder of its own, and
/// `eval --join DIR…` builds the table from the n folders with no model loaded — the same generations.scored.jsonl,
/// table.md and report.json, byte for byte, as one unsharded `eval` (per-record values are computed the same way, and
/// the table reads them in the same order).
/// </summary>
public static class EvaluationShards
{
    public const string ManifestFile = "shard.json";
    const string ScoredFile = "generations.scored.jsonl";

    /// <summary>Identifies what is evaluated and how: the input records, the gold reward, the base LM (or none).</summary>
    public static string Fingerprint(IReadOnlyList<GenerationRecord> records, string goldName, string? baseLm)
        => GenerationJob.Fingerprint(records.Select(GenerationJsonl.Format).Prepend($"gold={goldName}").Prepend($"base-lm={baseLm ?? "(none)"}"));

    /// <summary>Scores slice <paramref name="shard"/> of <paramref name="records"/> into <paramref name="outDir"/>
    /// (generations.scored.jsonl of the slice and shard.json); returns the slice's (start, length).</summary>
    public static (int Start, int Length) WriteShard(IReadOnlyList<GenerationRecord> records, PromptShard shard, IGoldReward gold,
        BaseLmProbe? probe, string? baseLmSource, string outDir, IProgress<(int Done, int Total)>? progress = null)
    {
        var (start, length) = shard.Slice(records.Count, batchSize: 1);
        var scored = GenerationEvaluator.Score(records.Skip(start).Take(length).ToList(), gold, probe, progress);
        Directory.CreateDirectory(outDir);
        GenerationJsonl.Write(Path.Combine(outDir, ScoredFile), scored);
        var manifest = new Dictionary<string, object?>
        {
            ["shard"] = shard.ToString(),
            ["records"] = records.Count,
            ["start"] = start,
            ["length"] = length,
            ["gold"] = gold.Name,
            ["base_lm"] = baseLmSource,
            ["fingerprint"] = Fingerprint(records, gold.Name, baseLmSource),
        };
        Pargs.IO.AtomicFile.WriteAllText(Path.Combine(outDir, ManifestFile), JsonSerializer.Serialize(manifest, new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return (start, length);
    }

    /// <summary>The scored records of all n shard folders in order, and the gold reward's name; refuses a missing,
    /// repeated or foreign shard.</summary>
    public static (List<GenerationRecord> Scored, string GoldName) Join(IReadOnlyList<string> folders)
    {
        if (folders.Count == 0) throw new PargsException("--join: give the n folders `eval --shard i/n` wrote");
        var shards = new List<(PromptShard Shard, int Records, int Start, int Length, string Gold, string Fingerprint, string Folder)>();
        foreach (var folder in folders)
        {
            string path = Path.Combine(folder, ManifestFile);
            if (!File.Exists(path)) throw new PargsException($"{folder}: no {ManifestFile}; not a folder `eval --shard` wrote");
            var json = CheckedJson.ReadFile(path).Object();
            var shard = PromptShard.Parse(json["shard"].String(), $"{path}: shard");
            shards.Add((shard, json["records"].Int(1), json["start"].Int(0), json["length"].Int(0), json["gold"].String(), json["fingerprint"].String(), folder));
        }
        var first = shards[0];
        foreach (var s in shards)
        {
            if (s.Fingerprint != first.Fingerprint || s.Shard.Count != first.Shard.Count || s.Records != first.Records)
                throw new PargsException($"{s.Folder}: a shard of another evaluation than {first.Folder} (other generations, gold reward, base LM or n)");
            if (s.Shard.Slice(s.Records, 1) != (s.Start, s.Length))
                throw new PargsException($"{s.Folder}/{ManifestFile}: start {s.Start} and length {s.Length} are not slice {s.Shard} of {s.Records} records");
        }
        var byIndex = shards.GroupBy(s => s.Shard.Index).ToList();
        if (byIndex.FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new PargsException($"--join: shard {twice.Key}/{first.Shard.Count} given twice ({string.Join(", ", twice.Select(s => s.Folder))})");
        if (shards.Count != first.Shard.Count)
        {
            var missing = Enumerable.Range(0, first.Shard.Count).Except(shards.Select(s => s.Shard.Index));
            throw new PargsException($"--join: shards {string.Join(", ", missing.Select(i => $"{i}/{first.Shard.Count}"))} are missing");
        }
        var scored = new List<GenerationRecord>(first.Records);
        foreach (var s in shards.OrderBy(s => s.Shard.Index))
        {
            var records = GenerationJsonl.Read(Path.Combine(s.Folder, ScoredFile));
            if (records.Count != s.Length)
                throw new PargsException($"{s.Folder}/{ScoredFile}: {records.Count} records where its shard.json says {s.Length}");
            if (records.FirstOrDefault(r => r.Reward is null) is { } unscored)
                throw new PargsException($"{s.Folder}/{ScoredFile}: prompt '{unscored.PromptKey}' of {unscored.MethodName} has no reward");
            scored.AddRange(records);
        }
        return (scored, first.Gold);
    }
}
