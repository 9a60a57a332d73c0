namespace Pargs.Models.Families.Phi3;

/// <summary>
/// What only Phi-3 configs carry (<see cref="ModelConfig.Extras"/>): the share of each head that is rotated
/// (<c>partial_rotary_factor</c>, 1.0 for Phi-3/3.5, 0.75 for Phi-4-mini) and the pre-training context that LongRoPE
/// scales from (<c>original_max_position_embeddings</c>, also kept in the rope scaling it shapes).
/// </summary>
public sealed record Phi3Settings(double PartialRotaryFactor = 1.0, int OriginalMaxPositions = 4096)
{
    /// <summary>The settings of <paramref name="config"/> (transformers' defaults when the config has none).</summary>
    public static Phi3Settings Of(ModelConfig config) => config.Extras as Phi3Settings ?? new Phi3Settings();

    /// <summary>Rotated dimensions per head: int(head_dim · partial_rotary_factor).</summary>
    public int RotaryDims(ModelConfig config) => PartialRotaryEmbedding.DimsFor(config.HeadDim, PartialRotaryFactor);
}
