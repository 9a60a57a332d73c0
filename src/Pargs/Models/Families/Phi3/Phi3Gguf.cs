using Pargs.Checkpoints;

namespace Pargs.Models.Families.Phi3;

/// <summary>
/// Phi-3 as llama.cpp's "phi3" architecture (for <c>pargs convert --to gguf</c>): the fused qkv_proj and gate_up_proj
/// stay fused (attn_qkv; ffn_up holds gate then up, which llama.cpp's SwiGLU splits in that order), rotary halves as
/// in Hugging Face (no Meta permutation), rope.dimension_count is the rotated part of a head, and LongRoPE travels as
/// llama.cpp's converter writes it: the factors as the tensors rope_factors_short / rope_factors_long, the pre-training
/// context as rope.scaling.original_context_length and the cos/sin factor as rope.scaling.attn_factor.
/// </summary>
public static class Phi3Gguf
{
    static readonly (string, string, bool)[] Tensors =
    [
        ("model.embed_tokens.weight", "token_embd.weight", false),
        ("model.norm.weight", "output_norm.weight", false),
        ("lm_head.weight", "output.weight", false),
        ("model.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", false),
        ("model.layers.{i}.self_attn.qkv_proj.weight", "blk.{i}.attn_qkv.weight", false),
        ("model.layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight", false),
        ("model.layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight", false),
        ("model.layers.{i}.mlp.gate_up_proj.weight", "blk.{i}.ffn_up.weight", false),
        ("model.layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight", false),
    ];

    public static readonly GgufConverter.GgufFamily Family = new("phi3", MetaRotaryLayout: false, LayerNorm: false, Tensors)
    {
        RotaryDims = config => Phi3Settings.Of(config).RotaryDims(config),
        RopeScalingTypes = ["longrope"],
        Check = Notes,
        WriteMetadata = WriteMetadata,
        ConfigTensors = RopeFactors,
        FromGgufConfig = FromGguf,
    };

    /// <summary>
    /// A phi3 GGUF's config: the rotated share from rope.dimension_count, LongRoPE from the factor tensors and keys, the
    /// sliding window from attention.sliding_window (honoured as transformers does, though llama.cpp ignores it).
    /// </summary>
    static ModelConfig FromGguf(GgufFile gguf, ModelConfig generic)
    {
        int headDim = generic.HeadDim;
        int dims = gguf.GetInt32("phi3.rope.dimension_count", 2, headDim) ?? headDim;
        int original = gguf.GetInt32("phi3.rope.scaling.original_context_length", 1, int.MaxValue) ?? generic.MaxPositions;
        RopeScaling? scaling = null;
        if (gguf.Find("rope_factors_long.weight") is not null || gguf.Find("rope_factors_short.weight") is not null)
        {
            ValueList<double> Factors(string name)
            {
                using var t = gguf.ReadTensor(name);
                if (t.dim() != 1 || t.shape[0] != dims / 2)
                    throw new PargsException($"{gguf.Path}: tensor \"{name}\" has shape [{string.Join(", ", t.shape)}]; LongRoPE needs [{dims / 2}] (rope.dimension_count / 2)");
                return new ValueList<double>(t.data<float>().ToArray().Select(f => (double)f));
            }
            scaling = new RopeScaling
            {
                Type = "longrope", OriginalMaxPositions = original,
                ShortFactor = Factors("rope_factors_short.weight"), LongFactor = Factors("rope_factors_long.weight"),
                AttentionFactor = gguf.GetNumber("phi3.rope.scaling.attn_factor"),
            };
        }
        int? window = gguf.GetInt32("phi3.attention.sliding_window", 0, int.MaxValue) is { } w && w > 0 ? w : null;
        return generic with
        {
            RopeScaling = scaling, SlidingWindow = window, AttentionBias = false, AttentionOutputBias = false,
            Extras = new Phi3Settings((double)dims / headDim, original),
        };
    }

    static IEnumerable<string> Notes(ModelConfig config, string source)
    {
        if (config.SlidingWindow is { } window && window < config.MaxPositions)
            yield return $"sliding_window {window}: written as phi3.attention.sliding_window, but llama.cpp currently runs phi3 with full attention (the same within {window} tokens)";
        if (config.RopeScaling is { Type: "longrope" })
            yield return $"longrope: llama.cpp chooses the long factors when its context size exceeds {Phi3Settings.Of(config).OriginalMaxPositions}, transformers and Pargs when the sequence does";
    }

    static void WriteMetadata(GgufWriter writer, ModelConfig config)
    {
        if (config.SlidingWindow is { } window) writer.Set("phi3.attention.sliding_window", GgufValue.U32(checked((uint)window)));
        if (config.RopeScaling is not { Type: "longrope" } scaling) return;
        var settings = Phi3Settings.Of(config);
        double attentionFactor = RopeScaling.Frequencies(scaling, settings.RotaryDims(config), config.RopeTheta, config.MaxPositions, 1).AttentionFactor;
        writer.Set("phi3.rope.scaling.original_context_length", GgufValue.U32(checked((uint)settings.OriginalMaxPositions)));
        writer.Set("phi3.rope.scaling.attn_factor", GgufValue.F32((float)attentionFactor));
    }

    static IEnumerable<(string Name, float[] Values)> RopeFactors(ModelConfig config)
    {
        if (config.RopeScaling is not { Type: "longrope", ShortFactor: { } shortFactor, LongFactor: { } longFactor }) yield break;
        yield return ("rope_factors_long.weight", longFactor.Select(f => (float)f).ToArray());
        yield return ("rope_factors_short.weight", shortFactor.Select(f => (float)f).ToArray());
    }
}
