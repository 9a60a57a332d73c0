using Pargs.Models.Families.Llama;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gemma;

/// <summary>
/// Gemma-2 and Gemma-3 decode on <see cref="LlamaDecodeKernel"/> with their layer's departures as
/// <see cref="DecodeLayerForm"/> hooks: RMSNorm by (1 + w) everywhere (q/k norms and the final norm too), the attention
/// and MLP outputs normalised before the residual (post_attention_layernorm, post_feedforward_layernorm; the MLP's input
/// norm is pre_feedforward_layernorm), embeddings × √hidden in float32, scores × query_pre_attn_scalar^−½ and
/// soft-capped (attn_logit_softcapping), GeGLU with the tanh GELU, and per layer type the sliding window's mask and
/// (Gemma-3) the local rotary. The final logit soft-cap is the head's (<see cref="GemmaFamily.AdjustLogits"/>), applied
/// after the kernel as after the torch path.
/// </summary>
public static class GemmaDecodeKernel
{
    public static IDecodeKernel For(GemmaModel model)
    {
        var c = model.Config;
        var gemma = GemmaSettings.Of(c);
        var parameters = model.named_parameters().ToDictionary(np => np.name, np => (Tensor)np.parameter);
        var form = new DecodeLayerForm
        {
            NormPlusOne = true, SandwichNorms = true, Activation = DecodeActivation.GeGluTanh,
            EmbeddingScale = (float)Math.Sqrt(c.HiddenSize), AttentionScale = gemma.Scaling, AttentionSoftCap = gemma.AttnLogitSoftcapping,
            SlidingLayers = gemma.SlidingLayers.ToArray(),
        };
        return new LlamaDecodeKernel(c, model.GlobalRotary, parameters, (p, layer, kind) =>
        {
            string? name = kind switch
            {
                LlamaLayerTensor.InputNorm => "input_layernorm.weight",
                LlamaLayerTensor.QProj => "self_attn.q_proj.weight",
                LlamaLayerTensor.KProj => "self_attn.k_proj.weight",
                LlamaLayerTensor.VProj => "self_attn.v_proj.weight",
                LlamaLayerTensor.QBias => c.AttentionBias ? "self_attn.q_proj.bias" : null,
                LlamaLayerTensor.KBias => c.AttentionBias ? "self_attn.k_proj.bias" : null,
                LlamaLayerTensor.VBias => c.AttentionBias ? "self_attn.v_proj.bias" : null,
                LlamaLayerTensor.OProj => "self_attn.o_proj.weight",
                LlamaLayerTensor.OBias => c.AttentionOutputBias ? "self_attn.o_proj.bias" : null,
                LlamaLayerTensor.QNorm => c.QkNorm ? "self_attn.q_norm.weight" : null,
                LlamaLayerTensor.KNorm => c.QkNorm ? "self_attn.k_norm.weight" : null,
                LlamaLayerTensor.AttentionOutputNorm => "post_attention_layernorm.weight",
                LlamaLayerTensor.PostAttentionNorm => "pre_feedforward_layernorm.weight", // the kernel's pre-MLP norm
                LlamaLayerTensor.MlpOutputNorm => "post_feedforward_layernorm.weight",
                LlamaLayerTensor.GateProj => "mlp.gate_proj.weight",
                LlamaLayerTensor.UpProj => "mlp.up_proj.weight",
                LlamaLayerTensor.DownProj => "mlp.down_proj.weight",
                _ => null, // LayerNorm and MLP biases
            };
            return name is null ? null : (p[$"layers.{layer}." + name], 0, 0);
        }, form, slidingRotary: model.LocalRotary);
    }
}
