using Pargs.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>Tiny models with seeded random weights, built by the tests themselves.</summary>
public static class TinyModels
{
    /// <summary>Llama with GQA (4 heads, 2 kv heads), untied head and rope_theta ≠ 10000.</summary>
    public static ModelConfig LlamaConfig(int vocab = 61) => new ModelConfig
    {
        ModelType = "llama", VocabSize = vocab, HiddenSize = 32, IntermediateSize = 48,
        NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxPositions = 128, RopeTheta = 5000.0, NormEps = 1e-5,
        TieWordEmbeddings = false, BosTokenId = 1, EosTokenId = 2,
    };

    /// <summary>Qwen2-style: q/k/v biases, tied embeddings.</summary>
    public static ModelConfig Qwen2Config() => LlamaConfig() with
    {
        ModelType = "qwen2", AttentionBias = true, TieWordEmbeddings = true, RopeTheta = 1_000_000.0, NormEps = 1e-6,
    };

    public static ModelConfig Gpt2Config() => new ModelConfig
    {
        ModelType = "gpt2", VocabSize = 67, HiddenSize = 32, IntermediateSize = 128,
        NumLayers = 2, NumHeads = 4, NumKvHeads = 4, MaxPositions = 128, NormEps = 1e-5, TieWordEmbeddings = true,
        BosTokenId = 66, EosTokenId = 66,
    };

    /// <summary>A model whose every parameter (norm gains and biases included) is seeded random.</summary>
    public static CausalLM RandomLM(ModelConfig config, long seed = 1234)
    {
        manual_seed(seed);
        var model = new CausalLM(config);
        Randomize(model, seed);
        model.eval();
        return model;
    }

    /// <summary>A reward model (backbone + score head) with every parameter seeded random; <paramref name="headScale"/> sharpens rewards.</summary>
    public static Pargs.Rewards.RewardModel RandomRM(ModelConfig config, long seed, float headScale = 1f)
    {
        var rm = Pargs.Rewards.RewardModel.Create(config, seed);
        Randomize(rm, seed);
        using (no_grad())
        {
            using var scale = headScale.ToScalar(); // held: see Pargs.Models.HeldScalars
            rm.ScoreWeight.mul_(scale);
        }
        rm.eval();
        return rm;
    }

    public static void Randomize(nn.Module module, long seed)
    {
        var generator = new Generator((ulong)seed);
        using (no_grad())
            foreach (var (name, p) in module.named_parameters())
            {
                var noise = randn(p.shape, generator: generator);
                if (name.EndsWith("norm.weight") || name.EndsWith("ln_1.weight") || name.EndsWith("ln_2.weight") || name.EndsWith("ln_f.weight"))
                    p.copy_(noise.Times(0.1).Plus(1.0));
                else
                    p.copy_(noise.Times(0.2));
            }
    }

    /// <summary>Deterministic pseudo-random token ids in [3, vocab).</summary>
    public static int[] Tokens(int count, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(3, vocab)).ToArray();
    }
}
