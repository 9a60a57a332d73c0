using Pargs.Models.Families.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gemma;

/// <summary>
/// Gemma-2/3's block, normalised on both sides of each sub-layer:
/// h = x + post_attention_norm(attn(input_norm(x))), then h + post_feedforward_norm(mlp(pre_feedforward_norm(h))).
/// </summary>
public sealed class GemmaDecoderLayer : nn.Module
{
    readonly GemmaRmsNorm inputLayernorm, postAttentionLayernorm, preFeedforwardLayernorm, postFeedforwardLayernorm;
    readonly GemmaAttention selfAttn;
    readonly LlamaMlp mlp; // GeGLU: the gated MLP with the tanh GELU

    public GemmaDecoderLayer(ModelConfig config, int layerIndex) : base(nameof(GemmaDecoderLayer))
    {
        selfAttn = new GemmaAttention(config, layerIndex);
        mlp = new LlamaMlp(config, Gpt2.Gpt2Mlp.GeluNew);
        inputLayernorm = new GemmaRmsNorm(config.HiddenSize, config.NormEps);
        postAttentionLayernorm = new GemmaRmsNorm(config.HiddenSize, config.NormEps);
        preFeedforwardLayernorm = new GemmaRmsNorm(config.HiddenSize, config.NormEps);
        postFeedforwardLayernorm = new GemmaRmsNorm(config.HiddenSize, config.NormEps);
        register_module("self_attn", selfAttn);
        register_module("mlp", mlp);
        register_module("input_layernorm", inputLayernorm);
        register_module("post_attention_layernorm", postAttentionLayernorm);
        register_module("pre_feedforward_layernorm", preFeedforwardLayernorm);
        register_module("post_feedforward_layernorm", postFeedforwardLayernorm);
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor signedSin, Tensor groupedMask, KvCache? cache)
    {
        var h = x.Plus(postAttentionLayernorm.forward(selfAttn.Forward(inputLayernorm.forward(x), cos, signedSin, groupedMask, cache)));
        return h.Plus(postFeedforwardLayernorm.forward(mlp.forward(preFeedforwardLayernorm.forward(h))));
    }
}
