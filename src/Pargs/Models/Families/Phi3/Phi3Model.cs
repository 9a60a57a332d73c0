using Pargs.Models.Families.Llama;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Phi3;

/// <summary>
/// The Phi-3 backbone under the prefix "model": embed_tokens → layers (fused qkv_proj and gate_up_proj, partial
/// rotary with LongRoPE, optional sliding window) → norm. Parameter names are transformers' one to one, so a Phi-3
/// checkpoint loads and saves without renaming and converts to llama.cpp's fused tensors directly.
/// </summary>
public sealed class Phi3Model : TransformerBackbone
{
    readonly Embedding embedTokens;
    readonly ModuleList<Phi3DecoderLayer> layers;
    readonly RmsNorm norm;
    readonly PartialRotaryEmbedding rotary;

    public Phi3Model(ModelConfig config) : base(nameof(Phi3Model), config)
    {
        embedTokens = nn.Embedding(config.VocabSize, config.HiddenSize);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(i => new Phi3DecoderLayer(config, i)).ToArray());
        norm = new RmsNorm(config.HiddenSize, config.NormEps);
        rotary = new PartialRotaryEmbedding(Phi3Settings.Of(config).RotaryDims(config), config.MaxPositions, config.RopeTheta, config.RopeScaling);
        register_module("embed_tokens", embedTokens);
        register_module("layers", layers);
        register_module("norm", norm);
    }

    /// <summary>The rotary tables (partial width, LongRoPE's short and long), shared with the decode kernel.</summary>
    internal PartialRotaryEmbedding Rotary => rotary;

    public override Parameter TokenEmbeddingWeight => (Parameter)embedTokens.weight!;

    protected override Tensor ForwardInScope(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache)
    {
        var (cos, signedSin) = rotary.At(positions);
        // transformers masks Phi-3's sliding_window as Mistral's: a query sees itself and the window − 1 tokens before it.
        if (Config.SlidingWindow is { } window) mask = SlidingWindow.Restrict(mask, positions, cache, window);
        var groupedMask = GroupMask(mask, Config.NumHeads / Config.NumKvHeads);
        var x = embedTokens.forward(inputIds);
        foreach (var layer in layers)
            x = layer.Forward(x, rotary, cos, signedSin, groupedMask, cache);
        return norm.forward(x);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) rotary.Dispose();
        base.Dispose(disposing);
    }
}
