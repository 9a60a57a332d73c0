using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Encoders;

/// <summary>
/// DistilBERT's post-LN layer under its names: attention.{q_lin,k_lin,v_lin,out_lin}, sa_layer_norm, ffn.{lin1,lin2},
/// output_layer_norm.
/// </summary>
public sealed class DistilBertLayer : ModuleScope
{
    readonly Linear q, k, v, o, lin1, lin2;
    readonly LayerNorm saNorm, outputNorm;
    readonly EncoderConfig c;

    public DistilBertLayer(EncoderConfig c) : base(nameof(DistilBertLayer))
    {
        this.c = c;
        int h = c.HiddenSize;
        var attention = Add("attention", new ModuleScope("MultiHeadSelfAttention"));
        q = attention.Add("q_lin", nn.Linear(h, h));
        k = attention.Add("k_lin", nn.Linear(h, h));
        v = attention.Add("v_lin", nn.Linear(h, h));
        o = attention.Add("out_lin", nn.Linear(h, h));
        saNorm = Add("sa_layer_norm", nn.LayerNorm(h, c.LayerNormEps));
        var ffn = Add("ffn", new ModuleScope("FFN"));
        lin1 = ffn.Add("lin1", nn.Linear(h, c.IntermediateSize));
        lin2 = ffn.Add("lin2", nn.Linear(c.IntermediateSize, h));
        outputNorm = Add("output_layer_norm", nn.LayerNorm(h, c.LayerNormEps));
    }

    public Tensor Forward(Tensor x, Tensor keyMask)
    {
        var sa = saNorm.forward(x.Plus(o.forward(EncoderAttention.Forward(x, q, k, v, c.NumHeads, c.HeadDim, keyMask))));
        return outputNorm.forward(sa.Plus(lin2.forward(c.Activation.Apply(lin1.forward(sa)))));
    }
}

/// <summary>DistilBertModel: embeddings (word + position, LayerNorm; no token types) and transformer.layer.N.</summary>
public sealed class DistilBertModel : ModuleScope
{
    readonly Embedding word, position;
    readonly LayerNorm norm;
    readonly ModuleList<DistilBertLayer> layers;

    public DistilBertModel(EncoderConfig c) : base(nameof(DistilBertModel))
    {
        var embeddings = Add("embeddings", new ModuleScope("Embeddings"));
        word = embeddings.Add("word_embeddings", nn.Embedding(c.VocabSize, c.HiddenSize));
        position = embeddings.Add("position_embeddings", nn.Embedding(c.MaxPositionEmbeddings, c.HiddenSize));
        norm = embeddings.Add("LayerNorm", nn.LayerNorm(c.HiddenSize, c.LayerNormEps));
        layers = Add("transformer", new ModuleScope("Transformer")).Add("layer", nn.ModuleList(Enumerable.Range(0, c.NumLayers).Select(_ => new DistilBertLayer(c)).ToArray()));
    }

    public Tensor Forward(Tensor ids, Tensor positions, Tensor valid)
    {
        var mask = EncoderAttention.KeyMask(valid);
        var x = norm.forward(word.forward(ids).Plus(position.forward(positions)));
        foreach (var layer in layers) x = layer.Forward(x, mask);
        return x;
    }
}
