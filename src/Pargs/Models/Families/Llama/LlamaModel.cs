using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Families.Llama;

/// <summary>
/// The Llama backbone (also Mistral, and Qwen2 with q/k/v biases): embed_tokens → layers → norm.
/// Parameter names are Hugging Face's (<c>layers.0.self_attn.q_proj.weight</c>…) under the prefix "model".
/// </summary>
public sealed class LlamaModel : TransformerBackbone
{
    readonly Embedding embedTokens;
    readonly ModuleList<LlamaDecoderLayer> layers;
    readonly RmsNorm norm;
    readonly RotaryEmbedding rotary;

    public LlamaModel(ModelConfig config) : base(nameof(LlamaModel), config)
    {
        embedTokens = nn.Embedding(config.VocabSize, config.HiddenSize);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(i => new LlamaDecoderLayer(config, i)).ToArray());
        norm = new RmsNorm(config.HiddenSize, config.NormEps);
        rotary = new RotaryEmbedding(config.HeadDim, config.MaxPositions, config.RopeTheta, config.RopeScaling);
        register_module("embed_tokens", embedTokens);
        register_module("layers", layers);
        register_module("norm", norm);
    }

    public override Parameter TokenEmbeddingWeight => (Parameter)embedTokens.weight!;

    /// <summary>The rotary tables, which <see cref="LlamaDecodeKernel"/> reads in place.</summary>
    internal RotaryEmbedding Rotary => rotary;

    protected override Tensor ForwardInScope(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache)
    {
        var (cos, signedSin) = rotary.At(positions);
        if (Config.SlidingWindow is { } window) mask = SlidingWindow.Restrict(mask, positions, cache, window);
        var groupedMask = GroupMask(mask, Config.NumHeads / Config.NumKvHeads);
        var x = embedTokens.forward(inputIds);
        foreach (var layer in layers)
            x = layer.Forward(x, cos, signedSin, groupedMask, cache);
        return norm.forward(x);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) rotary.Dispose();
        base.Dispose(disposing);
    }
}
