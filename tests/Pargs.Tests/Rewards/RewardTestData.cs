using Pargs.Data;
using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Tests.Rewards;

/// <summary>Tiny reward models and synthetic preference pairs built by the tests.</summary>
public static class RewardTestData
{
    public static ModelConfig TinyLlama(int vocab = 16) => new ModelConfig
    {
        ModelType = "llama", VocabSize = vocab, HiddenSize = 32, IntermediateSize = 48,
        NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxPositions = 64, RopeTheta = 10000.0, NormEps = 1e-5,
        BosTokenId = 1, EosTokenId = 2, PadTokenId = 2,
    };

    /// <summary>A pair with every prefix listed (the data layer's default for partial training).</summary>
    public static TokenizedPair Pair(int[] prompt, int[] chosen, int[] rejected, double? margin = null, int[]? prefixes = null)
        => new(prompt, chosen, rejected, prefixes ?? Enumerable.Range(1, chosen.Length).ToArray(), margin, chosen.Length, rejected.Length);

    /// <summary>Random pairs of varying prompt and response lengths over tokens 3..vocab−1.</summary>
    public static List<TokenizedPair> RandomPairs(int count, int vocab, int seed, bool margins = false)
    {
        var rng = new Random(seed);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(3, vocab)).ToArray();
        return Enumerable.Range(0, count).Select(_ =>
        {
            int l = rng.Next(2, 7);
            int[] prompt = [1, .. Tokens(rng.Next(1, 4))];
            var prefixes = Enumerable.Range(1, l).Where(i => i == l || rng.Next(3) > 0).ToArray();
            return Pair(prompt, Tokens(l), Tokens(l), margins ? rng.NextDouble() : null, prefixes);
        }).ToList();
    }
}
