using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>Pre-norm block: x + attn(norm(x)), then + mlp(norm(x)).</summary>
public sealed class LlamaDecoderLayer : nn.Module
{
    readonly RmsNorm inputLayernorm, postAttentionLayernorm;
    readonly LlamaAttention selfAttn;
    readonly LlamaMlp mlp;

    public LlamaDecoderLayer(ModelConfig config, int layerIndex) : base(nameof(LlamaDecoderLayer))
    {
        selfAttn = new LlamaAttention(config, layerIndex);
        mlp = new LlamaMlp(config);
        inputLayernorm = new RmsNorm(config.HiddenSize, config.NormEps);
        postAttentionLayernorm = new RmsNorm(config.HiddenSize, config.NormEps);
        register_module("self_attn", selfAttn);
        register_module("mlp", mlp);
        register_module("input_layernorm", inputLayernorm);
        register_module("post_attention_layernorm", postAttentionLayernorm);
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor signedSin, Tensor groupedMask, KvCache? cache)
    {
        var h = x.Plus(selfAttn.Forward(inputLayernorm.forward(x), cos, signedSin, groupedMask, cache));
        return h.Plus(mlp.forward(postAttentionLayernorm.forward(h)));
    }
}
