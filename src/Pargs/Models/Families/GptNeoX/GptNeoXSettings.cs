namespace Pargs.Models.Families.GptNeoX;

/// <summary>
/// What only GPT-NeoX configs carry (<see cref="ModelConfig.Extras"/>): the rotated share of each head
/// (<c>rotary_pct</c>, 0.25 by default), whether attention and MLP read the same input (<c>use_parallel_residual</c>,
/// true by default) and the MLP's activation (<c>hidden_act</c>, exact GELU by default).
/// </summary>
public sealed record GptNeoXSettings(double RotaryPct = 0.25, bool UseParallelResidual = true, string HiddenAct = "gelu")
{
    /// <summary>Activations Pargs runs: exact (erf) GELU, and the tanh approximation under its transformers names.</summary>
    public static readonly string[] Activations = ["gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast"];

    public static GptNeoXSettings Of(ModelConfig config) => config.Extras as GptNeoXSettings ?? new GptNeoXSettings();

    /// <summary>Rotated dimensions per head: int(head_size · rotary_pct).</summary>
    public int RotaryDims(ModelConfig config) => Phi3.PartialRotaryEmbedding.DimsFor(config.HeadDim, RotaryPct);
}
