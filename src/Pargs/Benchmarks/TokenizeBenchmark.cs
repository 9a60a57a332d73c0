using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using Pargs.Tokenizers;

namespace Pargs.Benchmarks;

/// <summary>Settings of <see cref="TokenizeBenchmark"/>.</summary>
public sealed record TokenizeBenchmarkOptions
{
    /// <summary>The folder of tokenizer fixtures and corpus (tools/tokenizer-goldens writes it).</summary>
    public string FixturesDir { get; init; } = TokenizeBenchmark.DefaultFixtures();
    public IReadOnlyList<string> Tokenizers { get; init; } = ["qwen3", "gptoss", "llama3", "llama2", "gemma3", "roberta", "bert", "deberta", "t5"];
    /// <summary>Each text is encoded this many times on each side; its best time counts.</summary>
    public int Repeats { get; init; } = 3;
    /// <summary>Measure the Rust library too (through Node and tools/tokenizer-goldens/bench.mjs).</summary>
    public bool Reference { get; init; } = true;
}

/// <summary>
/// Encode speed on the golden corpus: Pargs against Hugging Face's Rust library (through Node, one awaited
/// call per text), each text's best time of a few repeats on each side. Prose is the HH dialogues and story
/// openings of the corpus; the worst text is the one with the largest Pargs / reference time ratio.
/// </summary>
public static class TokenizeBenchmark
{
    public static string DefaultFixtures()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Pargs.Tests", "Tokenizers", "Fixtures");
            if (Directory.Exists(candidate)) return candidate;
        }
        return Path.Combine("tests", "Pargs.Tests", "Tokenizers", "Fixtures");
    }

    public static BenchTable Run(TokenizeBenchmarkOptions options, Action<string>? log = null)
    {
        BenchChecks.AtLeastOne([options.Repeats], "--repeats");
        var corpusPath = Path.Combine(options.FixturesDir, "corpus.jsonl.gz");
        if (!File.Exists(corpusPath))
            throw new PargsException($"{corpusPath}: corpus not found (pass --fixtures, or run tools/tokenizer-goldens/make-goldens.mjs).");
        var corpus = ReadCorpus(corpusPath);
        var parts = Parts(corpusPath, corpus.Length);
        var prose = parts.Where(p => p.Kind is "hh" or "stories").SelectMany(p => Enumerable.Range(p.Start, p.End - p.Start)).ToList();
        var temp = Path.Combine(Path.GetTempPath(), $"pargs-bench-tokenize-{Environment.ProcessId}");
        try
        {
            var paths = options.Tokenizers.ToDictionary(n => n, n => TokenizerPath(options.FixturesDir, n, temp));
            var pargs = new Dictionary<string, (double[] Ns, int[] Tokens)>();
            foreach (var name in options.Tokenizers)
            {
                log?.Invoke($"tokenize: Pargs {name}");
                pargs[name] = MeasurePargs(TokenizerJson.LoadHuggingFace(paths[name]), corpus, options.Repeats);
            }
            Dictionary<string, (double[] Ns, int[] Tokens, double BatchNs)>? reference = null;
            if (options.Reference)
            {
                log?.Invoke("tokenize: the Rust library through Node");
                var ranges = string.Join(",", parts.Where(p => p.Kind is "hh" or "stories").Select(p => $"{p.Start}:{p.End}"));
                reference = MeasureReference(corpusPath, paths, options.Repeats, ranges);
            }
            var table = new BenchTable($"bench tokenize: encode tokens/s on {corpus.Length} texts ({prose.Count} prose), best of {options.Repeats} per text",
                "tokenizer", "prose tokens", "Pargs prose tok/s", "Rust prose tok/s", "Pargs / Rust prose (target ≥ 1.0)",
                "Rust prose tok/s, one batch call", "Pargs / Rust batch",
                "Pargs all tok/s", "Rust all tok/s", "texts > 10× slower", "worst text: Rust time / Pargs time (target ≥ 0.1)", "worst text");
            foreach (var name in options.Tokenizers)
            {
                var (ns, tokens) = pargs[name];
                double Rate(double[] times, IEnumerable<int> which) => which.Sum(i => tokens[i]) / (which.Sum(i => times[i]) / 1e9);
                var all = Enumerable.Range(0, corpus.Length).ToList();
                double pargsProse = Rate(ns, prose), pargsAll = Rate(ns, all);
                if (reference is null)
                {
                    table.Add(name, prose.Sum(i => tokens[i]).ToString(), $"{pargsProse:F0}", "-", "-", "-", "-", $"{pargsAll:F0}", "-", "-", "-", "-");
                    continue;
                }
                var (refNs, refTokens, batchNs) = reference[name];
                double rustBatch = prose.Sum(i => refTokens[i]) / (batchNs / 1e9);
                int differing = all.Count(i => refTokens[i] != tokens[i]);
                if (differing > 0) table.Notes.Add($"{name}: {differing} texts gave a different number of ids than the Rust library");
                double rustProse = Rate(refNs, prose), rustAll = Rate(refNs, all);
                int worst = all.MinBy(i => refNs[i] / ns[i]);
                table.Add(name, prose.Sum(i => tokens[i]).ToString(), $"{pargsProse:F0}", $"{rustProse:F0}", $"{pargsProse / rustProse:F2}",
                    $"{rustBatch:F0}", $"{pargsProse / rustBatch:F2}",
                    $"{pargsAll:F0}", $"{rustAll:F0}", all.Count(i => refNs[i] / ns[i] < 0.1).ToString(),
                    $"{refNs[worst] / ns[worst]:F2}", Describe(worst, corpus, parts));
            }
            table.Notes.Add("Rust = Hugging Face tokenizers 0.23.2 (npm): one awaited encode(text) per text from Node 20, which includes the cost of the call into the library; "
                + "\"one batch call\" = encodeBatch of all prose texts with TOKENIZERS_PARALLELISM=false (one thread), the library's own speed. Pargs = TokenizerJson, one Encode(text) per text, one thread.");
            return table;
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    static (double[] Ns, int[] Tokens) MeasurePargs(ITokenizer tokenizer, string[] corpus, int repeats)
    {
        foreach (var text in corpus) tokenizer.Encode(text); // warm-up: JIT, caches (the reference warms up too)
        var ns = Enumerable.Repeat(double.MaxValue, corpus.Length).ToArray();
        var tokens = new int[corpus.Length];
        for (int r = 0; r < repeats; r++)
        {
            for (int i = 0; i < corpus.Length; i++)
            {
                long start = Stopwatch.GetTimestamp();
                tokens[i] = tokenizer.Encode(corpus[i]).Length;
                double elapsed = Stopwatch.GetElapsedTime(start).TotalNanoseconds;
                ns[i] = Math.Min(ns[i], elapsed);
            }
        }
        return (ns, tokens);
    }

    static Dictionary<string, (double[] Ns, int[] Tokens, double BatchNs)> MeasureReference(string corpusPath, Dictionary<string, string> paths,
        int repeats, string proseRanges)
    {
        var script = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(corpusPath))!, "..", "..", "..", "..",
            "tools", "tokenizer-goldens", "bench.mjs"));
        if (!File.Exists(script)) throw new PargsException($"{script}: the reference script is missing; pass --no-reference to measure Pargs alone.");
        if (!Directory.Exists(Path.Combine(Path.GetDirectoryName(script)!, "node_modules", "tokenizers")))
            throw new PargsException($"{Path.GetDirectoryName(script)}: run `npm ci` there first (the Rust library's npm package), or pass --no-reference.");
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { script, corpusPath, repeats.ToString(), proseRanges }.Concat(paths.Select(p => $"{p.Key}={p.Value}"))) start.ArgumentList.Add(arg);
        start.Environment["TOKENIZERS_PARALLELISM"] = "false"; // the batch call on one thread, as Pargs encodes
        using var node = Process.Start(start) ?? throw new PargsException("could not start node (Node 20 is needed for the reference; or pass --no-reference).");
        var stderr = node.StandardError.ReadToEndAsync();
        var stdout = node.StandardOutput.ReadToEnd();
        node.WaitForExit();
        if (node.ExitCode != 0) throw new PargsException($"node {script} failed (exit {node.ExitCode}): {stderr.Result.Trim().Split('\n').LastOrDefault()}");
        using var doc = JsonDocument.Parse(stdout);
        return paths.Keys.ToDictionary(n => n, n =>
        {
            var o = doc.RootElement.GetProperty(n);
            return (o.GetProperty("ns").EnumerateArray().Select(x => x.GetDouble()).ToArray(),
                o.GetProperty("tokens").EnumerateArray().Select(x => x.GetInt32()).ToArray(), o.GetProperty("batchNs").GetDouble());
        });
    }

    static string TokenizerPath(string fixtures, string name, string temp)
    {
        var dir = Path.Combine(fixtures, name);
        var plain = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(plain)) return plain;
        var gz = Path.Combine(dir, "tokenizer.json.gz");
        if (!File.Exists(gz)) throw new PargsException($"{dir}: no tokenizer.json or tokenizer.json.gz (known: the folders of {fixtures}).");
        var unpacked = Path.Combine(temp, name);
        Directory.CreateDirectory(unpacked);
        var path = Path.Combine(unpacked, "tokenizer.json");
        using (var input = new GZipStream(File.OpenRead(gz), CompressionMode.Decompress))
        using (var output = File.Create(path)) input.CopyTo(output);
        var config = Path.Combine(dir, "tokenizer_config.json");
        if (File.Exists(config)) File.Copy(config, Path.Combine(unpacked, "tokenizer_config.json"));
        return path;
    }

    static string[] ReadCorpus(string path)
    {
        using var reader = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        var texts = new List<string>();
        while (reader.ReadLine() is string line)
        {
            if (line.Length == 0) continue;
            try { texts.Add(JsonSerializer.Deserialize<string>(line) ?? throw new JsonException("null")); }
            catch (JsonException e) { throw new PargsException($"{path}: line {texts.Count + 1} is not a JSON string: {e.Message}"); }
        }
        return texts.ToArray();
    }

    /// <summary>The kinds of text of the corpus and their [start, end) indices, from corpus-parts.json beside it.</summary>
    static List<(string Kind, int Start, int End)> Parts(string corpusPath, int count)
    {
        var partsPath = Path.Combine(Path.GetDirectoryName(corpusPath)!, "corpus-parts.json");
        var parts = new List<(string, int, int)>();
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(partsPath));
            foreach (var kind in doc.RootElement.EnumerateObject())
            {
                int start = kind.Value[0].GetInt32(), end = kind.Value[1].GetInt32();
                if (start < 0 || end > count || start > end)
                    throw new PargsException($"{partsPath}: {kind.Name} [{start}, {end}) is outside the corpus of {count} texts.");
                parts.Add((kind.Name, start, end));
            }
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException or FormatException)
        {
            throw new PargsException($"{partsPath}: expected {{\"hh\": [start, end], \"stories\": [start, end], …}}: {e.Message}");
        }
        return parts;
    }

    static string Describe(int index, string[] corpus, List<(string Kind, int Start, int End)> parts)
    {
        var kind = parts.FirstOrDefault(p => index >= p.Start && index < p.End).Kind ?? "text";
        return $"#{index} ({kind}, {corpus[index].Length} chars)";
    }
}
