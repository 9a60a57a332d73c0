using Pargs.Models.Families.Llama;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Gemma;

/// <summary>
/// The Gemma-2 / Gemma-3 text backbone: embed_tokens (scaled by √hidden) → layers → norm, under the prefix "model".
/// Each layer is global (full causal attention, the global rotary) or sliding (attention restricted to the window,
/// and on Gemma-3 its own rotary: rope_local_base_freq, unscaled), as <see cref="GemmaSettings.SlidingLayers"/> says.
/// </summary>
public sealed class GemmaModel : TransformerBackbone
{
    readonly Embedding embedTokens;
    readonly ModuleList<GemmaDecoderLayer> layers;
    readonly GemmaRmsNorm norm;
    readonly RotaryEmbedding globalRotary;
    readonly RotaryEmbedding? localRotary; // null: the sliding layers share the global rotary (Gemma-2)
    readonly bool[] sliding;
    readonly Tensor embedScale;

    public GemmaModel(ModelConfig config) : base(nameof(GemmaModel), config)
    {
        var gemma = GemmaSettings.Of(config);
        sliding = gemma.SlidingLayers.ToArray();
        embedTokens = nn.Embedding(config.VocabSize, config.HiddenSize);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(i => new GemmaDecoderLayer(config, i)).ToArray());
        norm = new GemmaRmsNorm(config.HiddenSize, config.NormEps);
        globalRotary = new RotaryEmbedding(config.HeadDim, config.MaxPositions, config.RopeTheta, config.RopeScaling);
        if (sliding.Any(s => s) && (gemma.LocalRopeTheta != config.RopeTheta || !Equals(gemma.LocalRopeScaling, config.RopeScaling)))
            localRotary = new RotaryEmbedding(config.HeadDim, config.MaxPositions, gemma.LocalRopeTheta, gemma.LocalRopeScaling);
        // transformers multiplies by √hidden as a tensor of the embedding's dtype: the float32-rounded square root.
        embedScale = tensor((float)Math.Sqrt(config.HiddenSize)).DetachFromDisposeScope(); // the model's (freed by Dispose), not a caller's scope's
        register_module("embed_tokens", embedTokens);
        register_module("layers", layers);
        register_module("norm", norm);
    }

    public override Parameter TokenEmbeddingWeight => (Parameter)embedTokens.weight!;

    /// <summary>The global layers' rotary (and the sliding layers' when <see cref="LocalRotary"/> is null): for the decode kernel.</summary>
    internal RotaryEmbedding GlobalRotary => globalRotary;

    /// <summary>The sliding layers' own rotary (Gemma-3's rope_local_base_freq), or null when they share the global one.</summary>
    internal RotaryEmbedding? LocalRotary => localRotary;

    protected override Tensor ForwardInScope(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache)
    {
        int groups = Config.NumHeads / Config.NumKvHeads;
        var (cos, signedSin) = globalRotary.At(positions);
        var (localCos, localSignedSin) = localRotary?.At(positions) ?? (cos, signedSin);
        var globalMask = GroupMask(mask, groups);
        var slidingMask = Config.SlidingWindow is { } window && sliding.Any(s => s)
            ? GroupMask(SlidingWindow.Restrict(mask, positions, cache, window), groups)
            : globalMask;
        var x = embedTokens.forward(inputIds) * embedScale;
        for (int i = 0; i < sliding.Length; i++)
            x = sliding[i]
                ? layers[i].Forward(x, localCos, localSignedSin, slidingMask, cache)
                : layers[i].Forward(x, cos, signedSin, globalMask, cache);
        return norm.forward(x);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            globalRotary.Dispose();
            localRotary?.Dispose();
            embedScale.Dispose();
        }
        base.Dispose(disposing);
    }
}
