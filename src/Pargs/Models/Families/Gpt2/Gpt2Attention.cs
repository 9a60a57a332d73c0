using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gpt2;

/// <summary>Multi-head attention with the fused c_attn projection (q, k, v side by side in one matrix).</summary>
public sealed class Gpt2Attention : nn.Module
{
    readonly ModelConfig config;
    readonly int layerIndex;
    readonly Conv1D cAttn, cProj;

    public Gpt2Attention(ModelConfig config, int layerIndex) : base(nameof(Gpt2Attention))
    {
        this.config = config;
        this.layerIndex = layerIndex;
        cAttn = new Conv1D(config.HiddenSize, 3 * config.HiddenSize);
        cProj = new Conv1D(config.HiddenSize, config.HiddenSize);
        register_module("c_attn", cAttn);
        register_module("c_proj", cProj);
    }

    public Tensor Forward(Tensor x, Tensor mask, KvCache? cache)
    {
        long b = x.shape[0], t = x.shape[1];
        int h = config.NumHeads, d = config.HeadDim;
        var qkv = cAttn.forward(x).split(config.HiddenSize, 2);
        var q = qkv[0].view(b, t, h, d).transpose(1, 2);
        var k = qkv[1].view(b, t, h, d).transpose(1, 2);
        var v = qkv[2].view(b, t, h, d).transpose(1, 2);
        if (cache is not null) (k, v) = cache.Write(layerIndex, k, v);
        var o = TransformerBackbone.Attend(q, k, v, mask, h, h);
        return cProj.forward(o);
    }
}
