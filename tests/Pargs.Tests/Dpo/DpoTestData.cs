using TorchSharp;
using Pargs.Data;
using Pargs.Models;
using Pargs.Tests.Models;

namespace Pargs.Tests.Dpo;

/// <summary>Tiny policies and synthetic preference pairs for the DPO tests.</summary>
public static class DpoTestData
{
    public static ModelConfig Config(int vocab = 16) => TinyModels.LlamaConfig(vocab) with { MaxPositions = 64 };

    /// <summary>A tiny Llama with small seeded random weights (so it starts near uniform, like a real init).</summary>
    public static CausalLM Policy(int vocab = 16, long seed = 3)
    {
        var model = TinyModels.RandomLM(Config(vocab), seed);
        using var half = 0.5.ToScalar(); // held: see Pargs.Models.HeldScalars
        using (TorchSharp.torch.no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (!name.EndsWith("norm.weight")) p.mul_(half);
        return model;
    }

    /// <summary>A pair padded with EOS (id 2) to equal length, the way PairTokenizer stores it.</summary>
    public static TokenizedPair Pair(int[] prompt, int[] chosen, int[] rejected)
    {
        int length = Math.Max(chosen.Length, rejected.Length);
        int[] Pad(int[] ids) => [.. ids, .. Enumerable.Repeat(2, length - ids.Length)];
        return new TokenizedPair(prompt, Pad(chosen), Pad(rejected), Enumerable.Range(1, length).ToArray(), null, chosen.Length, rejected.Length);
    }

    /// <summary>
    /// The preference: a chosen response repeats the prompt's last token (an "on-topic" answer); a rejected one
    /// is random filler. Lengths vary, so padding and masking are exercised.
    /// </summary>
    public static List<TokenizedPair> EchoPairs(int count, int seed, int vocab = 16)
    {
        var rng = new Random(seed);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(3, vocab)).ToArray();
        return Enumerable.Range(0, count).Select(_ =>
        {
            int[] prompt = [1, .. Tokens(rng.Next(1, 4))];
            int topic = prompt[^1];
            var chosen = Enumerable.Repeat(topic, rng.Next(2, 6)).ToArray();
            var rejected = Tokens(rng.Next(2, 6)).Select(t => t == topic ? 3 + (t - 2) % (vocab - 3) : t).ToArray();
            return Pair(prompt, chosen, rejected);
        }).ToList();
    }
}
