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
    /// <summary>Gemma's GeGLU: down(gelu_tanh(gate(x)) · up(x)).</summary>
    GeGluTanh,
}

/// <summary>
/// How a family's decoder layer departs from Llama's on <see cref="LlamaDecodeKernel"/>'s loop: the few hooks (norm
/// kind, residual shape, fused per-head q/k/v, MLP; Gemma's (1 + w) and sandwich norms, embedding scale, attention
/// scale and soft-cap, per-layer windows) that let GPT-NeoX and Gemma decode on the same loop instead of a copy of it.
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

    /// <summary>RMSNorm scales by (1 + w), the stored weight being the offset from one (Gemma); q/k norms too.</summary>
    public bool NormPlusOne { get; init; }

    /// <summary>
    /// The attention output and the MLP output are normalised before they join the residual (Gemma's
    /// post_attention_layernorm and post_feedforward_layernorm: the AttentionOutputNorm and MlpOutputNorm tensors).
    /// </summary>
    public bool SandwichNorms { get; init; }

    /// <summary>The embedding rows are multiplied by this float32 factor (Gemma's √hidden); 0 = not scaled.</summary>
    public float EmbeddingScale { get; init; }

    /// <summary>The attention scores' scale instead of head_dim^−½ (Gemma's query_pre_attn_scalar^−½); null = head_dim^−½.</summary>
    public double? AttentionScale { get; init; }

    /// <summary>Scores become tanh(s / c) · c before the mask (Gemma-2's attn_logit_softcapping); null = none.</summary>
    public double? AttentionSoftCap { get; init; }

    /// <summary>
    /// Per layer, whether it attends through the config's sliding window (and rotates with the kernel's sliding-layer
    /// rotary when it has one): Gemma's interleaved local and global layers. Null = every layer uses the window when
    /// the config has one (Mistral, Phi-3).
    /// </summary>
    public IReadOnlyList<bool>? SlidingLayers { get; init; }
}
