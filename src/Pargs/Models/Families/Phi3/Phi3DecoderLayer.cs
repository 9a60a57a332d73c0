using Pargs.Models.Families.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Phi3;

/// <summary>Phi-3's pre-norm block (Llama's): x + attn(norm(x)), then + mlp(norm(x)).</summary>
public sealed class Phi3DecoderLayer : nn.Module
{
    readonly RmsNorm inputLayernorm, postAttentionLayernorm;
    readonly Phi3Attention selfAttn;
    readonly Phi3Mlp mlp;

    public Phi3DecoderLayer(ModelConfig config, int layerIndex) : base(nameof(Phi3DecoderLayer))
    {
        selfAttn = new Phi3Attention(config, layerIndex);
        mlp = new Phi3Mlp(config);
        inputLayernorm = new RmsNorm(config.HiddenSize, config.NormEps);
        postAttentionLayernorm = new RmsNorm(config.HiddenSize, config.NormEps);
        register_module("self_attn", selfAttn);
        register_module("mlp", mlp);
        register_module("input_layernorm", inputLayernorm);
        register_module("post_attention_layernorm", postAttentionLayernorm);
    }

    public Tensor Forward(Tensor x, PartialRotaryEmbedding rotary, Tensor cos, Tensor signedSin, Tensor groupedMask, KvCache? cache)
    {
        var h = x.Plus(selfAttn.Forward(inputLayernorm.forward(x), rotary, cos, signedSin, groupedMask, cache));
        return h.Plus(mlp.forward(postAttentionLayernorm.forward(h)));
    }
}
