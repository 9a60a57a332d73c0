using Pargs.Checkpoints;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// Llama 3.x's rotary scaling in GGUF. llama.cpp has no "llama3" rope type: its converter writes the scaling as one
/// float32 tensor, <c>rope_freqs.weight</c> [head_dim / 2], a divisor per frequency (1 for high frequencies, the
/// factor for low ones, a blend between), and the "llama" graph divides each rotary frequency by it. Pargs writes the
/// same tensor from a config's llama3 rope_scaling, and reads it back as what transformers calls that computation with
/// explicit per-frequency divisors: rope_type "longrope" with equal short and long factors, no attention scaling and
/// the file's context as the original one (so the short/long switch never happens) — a config.json transformers loads
/// to the same inverse frequencies.
/// </summary>
public static class LlamaGguf
{
    public const string RopeFreqsTensor = "rope_freqs.weight";

    /// <summary>The divisors llama.cpp reads from rope_freqs for this config, or null when its rotary is unscaled.</summary>
    public static float[]? RopeFreqs(ModelConfig config, string source)
    {
        if (config.RopeScaling is not { } scaling) return null;
        int dim = config.HeadDim;
        switch (scaling.Type)
        {
            case "llama3":
            {
                var plain = RopeScaling.Frequencies(null, dim, config.RopeTheta, config.MaxPositions, 1).InverseFrequencies;
                var scaled = RopeScaling.Frequencies(scaling, dim, config.RopeTheta, config.MaxPositions, 1).InverseFrequencies;
                return plain.Zip(scaled, (p, s) => (float)(p / s)).ToArray();
            }
            case "longrope" when scaling.ShortFactor is { } s && scaling.LongFactor is { } l && s.SequenceEqual(l)
                                 && RopeScaling.Frequencies(scaling, dim, config.RopeTheta, config.MaxPositions, 1).AttentionFactor == 1.0:
                return s.Select(f => (float)f).ToArray();
            default:
                throw new PargsException($"{source}: rope_scaling {scaling.ToJson().ToJsonString()} (llama) is not converted to GGUF (llama.cpp's \"llama\" carries llama3 scaling, or any per-frequency divisors without attention scaling, as {RopeFreqsTensor})");
        }
    }

    /// <summary>The config with the file's rope_freqs divisors as its rotary scaling (see the class comment).</summary>
    public static ModelConfig WithRopeFreqs(GgufFile gguf, ModelConfig config)
    {
        string path = gguf.Path;
        var info = gguf.Find(RopeFreqsTensor)!;
        if (config.RopeScaling is not null)
            throw new PargsException($"{path}: tensor \"{RopeFreqsTensor}\" together with llama.rope.scaling.type \"{config.RopeScaling.Type}\" is not supported");
        if (info.Shape.Length != 1 || info.Shape[0] != config.HeadDim / 2)
            throw new PargsException($"{path}: tensor \"{RopeFreqsTensor}\" has shape [{string.Join(", ", info.Shape)}]; the head size {config.HeadDim} needs [{config.HeadDim / 2}]");
        using var t = gguf.ReadTensor(info);
        using var f32 = t.to_type(TorchSharp.torch.ScalarType.Float32);
        var divisors = f32.data<float>().ToArray();
        if (divisors.Any(d => !float.IsFinite(d) || d <= 0))
            throw new PargsException($"{path}: tensor \"{RopeFreqsTensor}\" holds a divisor that is not a positive finite number");
        var factors = new ValueList<double>(divisors.Select(d => (double)d));
        return config with
        {
            RopeScaling = new RopeScaling
            {
                Type = "longrope", ShortFactor = factors, LongFactor = factors, OriginalMaxPositions = config.MaxPositions, AttentionFactor = 1.0,
            },
        };
    }
}
