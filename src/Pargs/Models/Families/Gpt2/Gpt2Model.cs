using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gpt2;

/// <summary>
/// The GPT-2 backbone: wte + wpe (learned positions) → h.N blocks → ln_f, under the prefix "transformer".
/// </summary>
public sealed class Gpt2Model : TransformerBackbone
{
    readonly Embedding wte, wpe;
    readonly ModuleList<Gpt2Block> h;
    readonly LayerNorm lnF;

    public Gpt2Model(ModelConfig config) : base(nameof(Gpt2Model), config)
    {
        wte = nn.Embedding(config.VocabSize, config.HiddenSize);
        wpe = nn.Embedding(config.MaxPositions, config.HiddenSize);
        h = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(i => new Gpt2Block(config, i)).ToArray());
        lnF = nn.LayerNorm(config.HiddenSize, config.NormEps);
        register_module("wte", wte);
        register_module("wpe", wpe);
        register_module("h", h);
        register_module("ln_f", lnF);
    }

    public override Parameter TokenEmbeddingWeight => (Parameter)wte.weight!;

    protected override Tensor ForwardInScope(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache)
    {
        var x = wte.forward(inputIds).Plus(wpe.forward(positions));
        foreach (var block in h)
            x = block.Forward(x, mask, cache);
        return lnF.forward(x);
    }
}
