using Pargs.Models.Families.Phi3;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.GptNeoX;

/// <summary>
/// GPT-NeoX attention: the fused <c>query_key_value</c> projection laid out per head — its output, viewed as
/// [heads, 3 · head_size], holds each head's q, k and v side by side (not all q's, then all k's, as Phi-3 has it) —
/// partial rotary on q and k, and the output projection <c>dense</c>; both with biases under attention_bias.
/// </summary>
public sealed class GptNeoXAttention : nn.Module
{
    readonly ModelConfig config;
    readonly int layerIndex;
    readonly Linear queryKeyValue, dense;

    public GptNeoXAttention(ModelConfig config, int layerIndex) : base(nameof(GptNeoXAttention))
    {
        this.config = config;
        this.layerIndex = layerIndex;
        queryKeyValue = nn.Linear(config.HiddenSize, 3 * config.HiddenSize, hasBias: config.AttentionBias);
        dense = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: config.AttentionBias);
        register_module("query_key_value", queryKeyValue);
        register_module("dense", dense);
    }

    public Tensor Forward(Tensor x, PartialRotaryEmbedding rotary, Tensor cos, Tensor signedSin, Tensor mask, KvCache? cache)
    {
        long b = x.shape[0], t = x.shape[1];
        int h = config.NumHeads, d = config.HeadDim;
        var qkv = queryKeyValue.forward(x).view(b, t, h, 3 * d).transpose(1, 2); // [B, heads, T, 3·head_size]
        var q = rotary.Apply(qkv.narrow(3, 0, d), cos, signedSin);
        var k = rotary.Apply(qkv.narrow(3, d, d), cos, signedSin);
        var v = qkv.narrow(3, 2 * d, d);
        if (cache is not null) (k, v) = cache.Write(layerIndex, k, v);
        var o = TransformerBackbone.Attend(q, k, v, mask, h, h);
        return dense.forward(o);
    }
}
