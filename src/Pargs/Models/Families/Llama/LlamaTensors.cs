namespace Pargs.Models.Families.Llama;

/// <summary>The tensors of one Llama decoder layer, in the order <see cref="LlamaDecodeKernel"/> reads them.</summary>
public enum LlamaLayerTensor
{
    InputNorm, QProj, KProj, VProj, QBias, KBias, VBias, OProj, PostAttentionNorm, GateProj, UpProj, DownProj,
    OBias, QNorm, KNorm,
    // Only families decoding on this kernel with DecodeLayerForm hooks have these (GPT-NeoX); Llama's shape is null.
    InputNormBias, PostAttentionNormBias, UpBias, DownBias,
    // Gemma's norms of the attention output and of the MLP output (DecodeLayerForm.SandwichNorms); Llama's shape is null.
    AttentionOutputNorm, MlpOutputNorm,
}

/// <summary>
/// The Llama backbone's tensor names and shapes, written once: the loader's strict checks
/// (<see cref="LlamaFamily.BackboneTensors"/>) and the decode kernel's weight lookup read them from here, and a
/// test checks that the modules register exactly these. Names are relative to the backbone ("model").
/// </summary>
public static class LlamaTensors
{
    public const string Embedding = "embed_tokens.weight";
    public const string FinalNorm = "norm.weight";

    /// <summary>Every per-layer tensor kind, in kernel order.</summary>
    public static readonly LlamaLayerTensor[] LayerTensors = Enum.GetValues<LlamaLayerTensor>();

    public static string Name(int layer, LlamaLayerTensor tensor) => $"layers.{layer}." + tensor switch
    {
        LlamaLayerTensor.InputNorm => "input_layernorm.weight",
        LlamaLayerTensor.QProj => "self_attn.q_proj.weight",
        LlamaLayerTensor.KProj => "self_attn.k_proj.weight",
        LlamaLayerTensor.VProj => "self_attn.v_proj.weight",
        LlamaLayerTensor.QBias => "self_attn.q_proj.bias",
        LlamaLayerTensor.KBias => "self_attn.k_proj.bias",
        LlamaLayerTensor.VBias => "self_attn.v_proj.bias",
        LlamaLayerTensor.OProj => "self_attn.o_proj.weight",
        LlamaLayerTensor.PostAttentionNorm => "post_attention_layernorm.weight",
        LlamaLayerTensor.GateProj => "mlp.gate_proj.weight",
        LlamaLayerTensor.UpProj => "mlp.up_proj.weight",
        LlamaLayerTensor.DownProj => "mlp.down_proj.weight",
        LlamaLayerTensor.OBias => "self_attn.o_proj.bias",
        LlamaLayerTensor.QNorm => "self_attn.q_norm.weight",
        LlamaLayerTensor.KNorm => "self_attn.k_norm.weight",
        LlamaLayerTensor.InputNormBias => "input_layernorm.bias",
        LlamaLayerTensor.PostAttentionNormBias => "post_attention_layernorm.bias",
        LlamaLayerTensor.UpBias => "mlp.up_proj.bias",
        LlamaLayerTensor.DownBias => "mlp.down_proj.bias",
        // Gemma's names (its pre-MLP norm, the kernel's PostAttentionNorm, is pre_feedforward_layernorm).
        LlamaLayerTensor.AttentionOutputNorm => "post_attention_layernorm.weight",
        LlamaLayerTensor.MlpOutputNorm => "post_feedforward_layernorm.weight",
        _ => throw new ArgumentOutOfRangeException(nameof(tensor)),
    };

    /// <summary>The shape of a layer tensor under <paramref name="c"/>, or null when the config has no such tensor (biases off).</summary>
    public static long[]? Shape(ModelConfig c, LlamaLayerTensor tensor)
    {
        long h = c.HiddenSize, ff = c.IntermediateSize, q = c.NumHeads * c.HeadDim, kv = c.KvDim;
        return tensor switch
        {
            LlamaLayerTensor.InputNorm or LlamaLayerTensor.PostAttentionNorm => [h],
            LlamaLayerTensor.QProj => [q, h],
            LlamaLayerTensor.KProj or LlamaLayerTensor.VProj => [kv, h],
            LlamaLayerTensor.QBias => c.AttentionBias ? [q] : null,
            LlamaLayerTensor.KBias or LlamaLayerTensor.VBias => c.AttentionBias ? [kv] : null,
            LlamaLayerTensor.OProj => [h, q],
            LlamaLayerTensor.GateProj or LlamaLayerTensor.UpProj => [ff, h],
            LlamaLayerTensor.DownProj => [h, ff],
            LlamaLayerTensor.OBias => c.AttentionOutputBias ? [h] : null,
            LlamaLayerTensor.QNorm or LlamaLayerTensor.KNorm => c.QkNorm ? [c.HeadDim] : null,
            LlamaLayerTensor.InputNormBias or LlamaLayerTensor.PostAttentionNormBias or LlamaLayerTensor.UpBias or LlamaLayerTensor.DownBias
                or LlamaLayerTensor.AttentionOutputNorm or LlamaLayerTensor.MlpOutputNorm => null,
            _ => throw new ArgumentOutOfRangeException(nameof(tensor)),
        };
    }

    public static List<TensorSpec> Declare(ModelConfig c)
    {
        var list = new List<TensorSpec> { new(Embedding, [c.VocabSize, c.HiddenSize]) };
        for (int i = 0; i < c.NumLayers; i++)
            foreach (var tensor in LayerTensors)
                if (Shape(c, tensor) is { } shape) list.Add(new(Name(i, tensor), shape));
        list.Add(new(FinalNorm, [c.HiddenSize]));
        return list;
    }
}
