using Pargs.Models.Families.Llama;
using static TorchSharp.torch;

namespace Pargs.Models.Families.GptNeoX;

/// <summary>
/// GPT-NeoX decodes on <see cref="LlamaDecodeKernel"/> with its layer's departures as <see cref="DecodeLayerForm"/>
/// hooks: LayerNorms with biases, the parallel (or sequential) residual, the per-head fused <c>query_key_value</c>
/// (one product, then each head's q | k | v rows apart) with its bias, <c>dense</c>'s bias, an ungated MLP with biases
/// and the exact or tanh GELU. Partial rotary (<c>rotary_pct</c>) comes with the model's narrower rotary tables.
/// </summary>
public static class GptNeoXDecodeKernel
{
    public static IDecodeKernel For(GptNeoXModel model)
    {
        var c = model.Config;
        var settings = GptNeoXSettings.Of(c);
        var parameters = model.named_parameters().ToDictionary(np => np.name, np => (Tensor)np.parameter);
        var form = new DecodeLayerForm
        {
            LayerNorm = true, ParallelResidual = settings.UseParallelResidual, FusedQkvPerHead = true,
            Activation = settings.HiddenAct == "gelu" ? DecodeActivation.GeluExact : DecodeActivation.GeluTanh,
        };
        return new LlamaDecodeKernel(c, model.Rotary.Tables, parameters, (p, layer, kind) =>
        {
            string prefix = $"layers.{layer}.";
            string? name = kind switch
            {
                LlamaLayerTensor.InputNorm => "input_layernorm.weight",
                LlamaLayerTensor.InputNormBias => "input_layernorm.bias",
                LlamaLayerTensor.QProj => "attention.query_key_value.weight",
                LlamaLayerTensor.QBias => c.AttentionBias ? "attention.query_key_value.bias" : null,
                LlamaLayerTensor.OProj => "attention.dense.weight",
                LlamaLayerTensor.OBias => c.AttentionBias ? "attention.dense.bias" : null,
                LlamaLayerTensor.PostAttentionNorm => "post_attention_layernorm.weight",
                LlamaLayerTensor.PostAttentionNormBias => "post_attention_layernorm.bias",
                LlamaLayerTensor.UpProj => "mlp.dense_h_to_4h.weight",
                LlamaLayerTensor.UpBias => "mlp.dense_h_to_4h.bias",
                LlamaLayerTensor.DownProj => "mlp.dense_4h_to_h.weight",
                LlamaLayerTensor.DownBias => "mlp.dense_4h_to_h.bias",
                _ => null, // k/v (inside query_key_value), gate, q/k norms
            };
            return name is null ? null : (p[prefix + name], 0, 0);
        }, form, embeddingName: "embed_in.weight", finalNormName: "final_layer_norm.weight", finalNormBiasName: "final_layer_norm.bias");
    }
}
