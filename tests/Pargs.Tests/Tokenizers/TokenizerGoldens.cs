using System.IO.Compression;
using System.Text.Json;
using Pargs.Tokenizers;

namespace Pargs.Tests.Tokenizers;

/// <summary>
/// The fixtures of tools/tokenizer-goldens/make-goldens.mjs: the corpus, the tokenizers, and the ids and
/// decodes Hugging Face's Rust library gave for them.
/// </summary>
internal static class TokenizerGoldens
{
    public static readonly string[] Names = ["qwen3", "gptoss", "llama3", "llama2", "gemma3", "roberta", "bert", "deberta", "t5", "deberta-spm"];

    public static string Fixtures => Path.Combine(TokenizerTestData.RepoRoot(), "tests", "Pargs.Tests", "Tokenizers", "Fixtures");

    static readonly Lazy<string[]> corpus = new(() => ReadLines(Path.Combine(Fixtures, "corpus.jsonl.gz"))
        .Select(l => JsonSerializer.Deserialize<string>(l)!).ToArray());

    public static string[] Corpus => corpus.Value;

    static readonly Dictionary<string, HuggingFaceTokenizer> cache = new();

    /// <summary>The tokenizer of <paramref name="name"/>, loaded once per test run (a gzipped file is unpacked to a temporary folder).</summary>
    public static HuggingFaceTokenizer Load(string name)
    {
        lock (cache)
        {
            if (cache.TryGetValue(name, out var t)) return t;
            var dir = Path.Combine(Fixtures, name);
            var path = Path.Combine(dir, "tokenizer.json");
            if (!File.Exists(path))
            {
                var unpacked = Path.Combine(Path.GetTempPath(), $"pargs-tok-{name}-{Environment.ProcessId}");
                Directory.CreateDirectory(unpacked);
                path = Path.Combine(unpacked, "tokenizer.json");
                using (var gz = new GZipStream(File.OpenRead(Path.Combine(dir, "tokenizer.json.gz")), CompressionMode.Decompress))
                using (var file = File.Create(path)) gz.CopyTo(file);
                File.Copy(Path.Combine(dir, "tokenizer_config.json"), Path.Combine(unpacked, "tokenizer_config.json"), overwrite: true);
            }
            return cache[name] = TokenizerJson.LoadHuggingFace(path);
        }
    }

    public sealed record Golden(int[] Ids, string? Decode, string? DecodeAll, int[]? IdsSpecial, string? DecodeSpecial, int[]? PairIds, int[]? PairTypeIds);

    public static List<Golden> Read(string name) => ReadLines(Path.Combine(Fixtures, "goldens", $"{name}.jsonl.gz")).Select(line =>
    {
        using var doc = JsonDocument.Parse(line);
        var r = doc.RootElement;
        int[]? Ints(string field) => r.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(x => x.GetInt32()).ToArray() : null;
        string? Text(string field) => !r.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null ? null : v.GetString();
        return new Golden(Ints("ids")!, Text("decode"), Text("decode_all"), Ints("ids_special"), Text("decode_special"),
            Ints("pair_ids"), Ints("pair_type_ids"));
    }).ToList();

    static IEnumerable<string> ReadLines(string gzPath)
    {
        using var reader = new StreamReader(new GZipStream(File.OpenRead(gzPath), CompressionMode.Decompress));
        while (reader.ReadLine() is string line) if (line.Length > 0) yield return line;
    }
}
