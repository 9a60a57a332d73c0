using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gpt2;

/// <summary>Pre-LayerNorm block: x + attn(ln_1(x)), then + mlp(ln_2(x)).</summary>
public sealed class Gpt2Block : nn.Module
{
    readonly LayerNorm ln1, ln2;
    readonly Gpt2Attention attn;
    readonly Gpt2Mlp mlp;

    public Gpt2Block(ModelConfig config, int layerIndex) : base(nameof(Gpt2Block))
    {
        ln1 = nn.LayerNorm(config.HiddenSize, config.NormEps);
        attn = new Gpt2Attention(config, layerIndex);
        ln2 = nn.LayerNorm(config.HiddenSize, config.NormEps);
        mlp = new Gpt2Mlp(config);
        register_module("ln_1", ln1);
        register_module("attn", attn);
        register_module("ln_2", ln2);
        register_module("mlp", mlp);
    }

    public Tensor Forward(Tensor x, Tensor mask, KvCache? cache)
    {
        var h = x.Plus(attn.Forward(ln1.forward(x), mask, cache));
        return h.Plus(mlp.forward(ln2.forward(h)));
    }
}
