using Pargs.Models.Families.Llama;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Phi3;

/// <summary>
/// Phi-3's grouped-query attention: one fused projection <c>qkv_proj</c> whose output rows are all query heads, then
/// all key heads, then all value heads (transformers slices it in that order), partial rotary on q and k, no biases.
/// </summary>
public sealed class Phi3Attention : nn.Module
{
    readonly ModelConfig config;
    readonly int layerIndex;
    readonly Linear qkvProj, oProj;

    public Phi3Attention(ModelConfig config, int layerIndex) : base(nameof(Phi3Attention))
    {
        this.config = config;
        this.layerIndex = layerIndex;
        qkvProj = nn.Linear(config.HiddenSize, config.NumHeads * config.HeadDim + 2 * config.KvDim, hasBias: false);
        oProj = nn.Linear(config.NumHeads * config.HeadDim, config.HiddenSize, hasBias: false);
        register_module("qkv_proj", qkvProj);
        register_module("o_proj", oProj);
    }

    public Tensor Forward(Tensor x, PartialRotaryEmbedding rotary, Tensor cos, Tensor signedSin, Tensor groupedMask, KvCache? cache)
    {
        long b = x.shape[0], t = x.shape[1];
        int d = config.HeadDim, queryWidth = config.NumHeads * d;
        var qkv = qkvProj.forward(x);
        var q = qkv.narrow(2, 0, queryWidth).reshape(b, t, config.NumHeads, d).transpose(1, 2);
        var k = qkv.narrow(2, queryWidth, config.KvDim).reshape(b, t, config.NumKvHeads, d).transpose(1, 2);
        var v = qkv.narrow(2, queryWidth + config.KvDim, config.KvDim).reshape(b, t, config.NumKvHeads, d).transpose(1, 2);
        q = rotary.Apply(q, cos, signedSin);
        k = rotary.Apply(k, cos, signedSin);
        if (cache is not null) (k, v) = cache.Write(layerIndex, k, v);
        var o = TransformerBackbone.Attend(q, k, v, groupedMask, config.NumHeads, config.NumKvHeads);
        return oProj.forward(o);
    }
}
