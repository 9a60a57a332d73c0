using Pargs.Models.Families.Phi3;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.GptNeoX;

/// <summary>
/// A GPT-NeoX block with LayerNorms (weight and bias). use_parallel_residual: x + attn(ln1(x)) + mlp(ln2(x)), both
/// branches reading x (Pythia); otherwise sequential: h = x + attn(ln1(x)), then h + mlp(ln2(h)).
/// </summary>
public sealed class GptNeoXLayer : nn.Module
{
    readonly LayerNorm inputLayernorm, postAttentionLayernorm;
    readonly GptNeoXAttention attention;
    readonly GptNeoXMlp mlp;
    readonly bool parallelResidual;

    public GptNeoXLayer(ModelConfig config, int layerIndex) : base(nameof(GptNeoXLayer))
    {
        parallelResidual = GptNeoXSettings.Of(config).UseParallelResidual;
        inputLayernorm = nn.LayerNorm(config.HiddenSize, config.NormEps);
        postAttentionLayernorm = nn.LayerNorm(config.HiddenSize, config.NormEps);
        attention = new GptNeoXAttention(config, layerIndex);
        mlp = new GptNeoXMlp(config);
        register_module("input_layernorm", inputLayernorm);
        register_module("post_attention_layernorm", postAttentionLayernorm);
        register_module("attention", attention);
        register_module("mlp", mlp);
    }

    public Tensor Forward(Tensor x, PartialRotaryEmbedding rotary, Tensor cos, Tensor signedSin, Tensor mask, KvCache? cache)
    {
        var attended = attention.Forward(inputLayernorm.forward(x), rotary, cos, signedSin, mask, cache);
        if (parallelResidual) return x.Plus(attended).Plus(mlp.forward(postAttentionLayernorm.forward(x)));
        var h = x.Plus(attended);
        return h.Plus(mlp.forward(postAttentionLayernorm.forward(h)));
    }
}
