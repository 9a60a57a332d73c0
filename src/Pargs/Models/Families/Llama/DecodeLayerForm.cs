namespace Pargs.Models.Families.Llama;

/// <summary>The MLP a decode-kernel layer runs.</summary>
public enum DecodeActivation
{
    /// <summary>Llama's gated MLP: down(silu(gate(x)) · up(x)).</summary>
    SwiGlu,
    /// <summary>An ungated MLP: down(gelu(up(x) + b) + b) with the exact GELU (GPT-NeoX's "gelu").</summary>
    GeluExact,
    /// <summary>An ungated MLP with GELU's tanh approximation (gelu_new).</summary>
    GeluTanh,
}

/// <summary>
/// How a family's decoder layer departs from Llama's on <see cref="LlamaDecodeKernel"/>'s loop: the few hooks (norm
/// kind, residual shape, fused per-head q/k/v, MLP) that let GPT-NeoX decode on the same loop instead of a copy of it.
/// The default is Llama's layer.
/// </summary>
public sealed record DecodeLayerForm
{
    public static readonly DecodeLayerForm Llama = new();

    /// <summary>LayerNorm with weight and bias (…NormBias tensors, a final norm bias) instead of RMSNorm.</summary>
    public bool LayerNorm { get; init; }

    /// <summary>x + attn(norm₁(x)) + mlp(norm₂(x)), both branches reading the layer's input, instead of one after the other.</summary>
    public bool ParallelResidual { get; init; }

    /// <summary>
    /// QProj is one fused matrix [heads · 3 · head_dim, hidden] whose rows hold each head's q, k and v side by side
    /// (GPT-NeoX's query_key_value) and QBias its bias; KProj and VProj are absent.
    /// </summary>
    public bool FusedQkvPerHead { get; init; }

    public DecodeActivation Activation { get; init; } = DecodeActivation.SwiGlu;
}
