namespace Pargs.Models.Families.Gemma;

/// <summary>
/// What only Gemma-2 and Gemma-3 have, kept in <see cref="ModelConfig.Extras"/>: the attention scale
/// (query_pre_attn_scalar), the two tanh soft-caps, which layers attend through the sliding window, and the
/// rotary of those local layers (Gemma-3: rope_local_base_freq, no scaling; Gemma-2: the global rotary).
/// The window's size is <see cref="ModelConfig.SlidingWindow"/>, the global rotary <see cref="ModelConfig.RopeTheta"/>
/// and <see cref="ModelConfig.RopeScaling"/>, shared with the families that have them too.
/// </summary>
public sealed record GemmaSettings
{
    /// <summary>Attention scores are q·k · QueryPreAttnScalar^−½ (transformers' query_pre_attn_scalar; not head_dim^−½).</summary>
    public double QueryPreAttnScalar { get; init; } = 256;
    /// <summary>Scores become tanh(s / c) · c before the mask and softmax (Gemma-2's attn_logit_softcapping); null = none.</summary>
    public double? AttnLogitSoftcapping { get; init; }
    /// <summary>Logits become tanh(x / c) · c (final_logit_softcapping); null = none.</summary>
    public double? FinalLogitSoftcapping { get; init; }
    /// <summary>Per layer: true = "sliding_attention" (local), false = "full_attention" (global).</summary>
    public ValueList<bool> SlidingLayers { get; init; } = ValueList<bool>.Empty;
    /// <summary>The local layers' rotary base (Gemma-3's rope_local_base_freq; Gemma-2's local layers use rope_theta).</summary>
    public double LocalRopeTheta { get; init; } = 10000.0;
    /// <summary>The local layers' rotary scaling (null = default; Gemma-2 shares the global one).</summary>
    public RopeScaling? LocalRopeScaling { get; init; }

    /// <summary>The settings of <paramref name="config"/> (a Gemma config always carries them).</summary>
    public static GemmaSettings Of(ModelConfig config) => config.Extras as GemmaSettings
        ?? throw new InvalidOperationException($"model_type \"{config.ModelType}\" config carries no Gemma settings");

    /// <summary>The attention scale as transformers computes it: query_pre_attn_scalar ** -0.5.</summary>
    public double Scaling => Math.Pow(QueryPreAttnScalar, -0.5);

    /// <summary>transformers' default interleave: Gemma-2 layer i is sliding when i is even; Gemma-3 when (i + 1) % pattern != 0.</summary>
    public static bool[] DefaultSlidingLayers(int layers, int pattern)
        => Enumerable.Range(0, layers).Select(i => (i + 1) % pattern != 0).ToArray();
}
