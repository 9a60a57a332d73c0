using Pargs.Models.Families.Llama;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Phi3;

/// <summary>
/// Phi-3 decodes on <see cref="LlamaDecodeKernel"/>: its layer is Llama's (RMSNorm, GQA attention, SwiGLU) with the
/// projections fused. The kernel reads q, k and v as row ranges of <c>qkv_proj</c> (all query heads, then all key heads,
/// then all value heads — the order transformers slices it in) and gate and up as the two halves of
/// <c>gate_up_proj</c> (gate first): views at an offset into the one parameter, never a copy. The partial rotary
/// (<c>partial_rotary_factor</c>) and LongRoPE's short/long tables come with the model's rotary tables, the sliding
/// window from the config, as on the torch path.
/// </summary>
public static class Phi3DecodeKernel
{
    public static IDecodeKernel For(Phi3Model model)
    {
        var c = model.Config;
        long queryRows = (long)c.NumHeads * c.HeadDim, kvRows = c.KvDim, ff = c.IntermediateSize;
        var parameters = model.named_parameters().ToDictionary(np => np.name, np => (Tensor)np.parameter);
        return new LlamaDecodeKernel(c, model.Rotary.Tables, parameters, (p, layer, kind) =>
        {
            string prefix = $"layers.{layer}.";
            return kind switch
            {
                LlamaLayerTensor.QProj => (p[prefix + "self_attn.qkv_proj.weight"], 0, queryRows),
                LlamaLayerTensor.KProj => (p[prefix + "self_attn.qkv_proj.weight"], queryRows, kvRows),
                LlamaLayerTensor.VProj => (p[prefix + "self_attn.qkv_proj.weight"], queryRows + kvRows, kvRows),
                LlamaLayerTensor.GateProj => (p[prefix + "mlp.gate_up_proj.weight"], 0, ff),
                LlamaLayerTensor.UpProj => (p[prefix + "mlp.gate_up_proj.weight"], ff, ff),
                LlamaLayerTensor.InputNorm or LlamaLayerTensor.PostAttentionNorm or LlamaLayerTensor.OProj or LlamaLayerTensor.DownProj
                    => (p[LlamaTensors.Name(layer, kind)], 0, 0),
                _ => null, // no biases, no q/k norms
            };
        });
    }
}
