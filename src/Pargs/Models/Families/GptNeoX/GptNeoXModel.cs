using Pargs.Models.Families.Phi3;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.GptNeoX;

/// <summary>
/// The GPT-NeoX / Pythia backbone under the prefix "gpt_neox": embed_in → layers → final_layer_norm, rotary
/// positions on rotary_pct of each head (no learned positions).
/// </summary>
public sealed class GptNeoXModel : TransformerBackbone
{
    readonly Embedding embedIn;
    readonly ModuleList<GptNeoXLayer> layers;
    readonly LayerNorm finalLayerNorm;
    readonly PartialRotaryEmbedding rotary;

    public GptNeoXModel(ModelConfig config) : base(nameof(GptNeoXModel), config)
    {
        embedIn = nn.Embedding(config.VocabSize, config.HiddenSize);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(i => new GptNeoXLayer(config, i)).ToArray());
        finalLayerNorm = nn.LayerNorm(config.HiddenSize, config.NormEps);
        rotary = new PartialRotaryEmbedding(GptNeoXSettings.Of(config).RotaryDims(config), config.MaxPositions, config.RopeTheta, config.RopeScaling);
        register_module("embed_in", embedIn);
        register_module("layers", layers);
        register_module("final_layer_norm", finalLayerNorm);
    }

    /// <summary>The rotary tables (rotary_pct of each head), shared with the decode kernel.</summary>
    internal PartialRotaryEmbedding Rotary => rotary;

    public override Parameter TokenEmbeddingWeight => (Parameter)embedIn.weight!;

    protected override Tensor ForwardInScope(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache)
    {
        var (cos, signedSin) = rotary.At(positions);
        var x = embedIn.forward(inputIds);
        foreach (var layer in layers)
            x = layer.Forward(x, rotary, cos, signedSin, mask, cache);
        return finalLayerNorm.forward(x);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) rotary.Dispose();
        base.Dispose(disposing);
    }
}
