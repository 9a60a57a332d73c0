using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Encoders;

/// <summary>
/// BERT's embeddings: word + absolute position (+ token type when the model has a type table), then LayerNorm.
/// RoBERTa uses the same module with its own position ids (<see cref="RobertaForSequenceClassification"/>).
/// </summary>
public sealed class BertEmbeddings : ModuleScope
{
    readonly Embedding word, position;
    readonly Embedding? tokenType;
    readonly LayerNorm norm;

    public BertEmbeddings(EncoderConfig c) : base(nameof(BertEmbeddings))
    {
        word = Add("word_embeddings", nn.Embedding(c.VocabSize, c.HiddenSize));
        position = Add("position_embeddings", nn.Embedding(c.MaxPositionEmbeddings, c.HiddenSize));
        if (c.TypeVocabSize > 0) tokenType = Add("token_type_embeddings", nn.Embedding(c.TypeVocabSize, c.HiddenSize));
        norm = Add("LayerNorm", nn.LayerNorm(c.HiddenSize, c.LayerNormEps));
    }

    /// <summary>ids, token types and positions [B, T] → [B, T, hidden]. A model without a type table reads no types.</summary>
    public Tensor Forward(Tensor ids, Tensor typeIds, Tensor positions)
    {
        var x = word.forward(ids).Plus(position.forward(positions));
        if (tokenType is not null) x = x.Plus(tokenType.forward(typeIds));
        return norm.forward(x);
    }
}

/// <summary>
/// A post-LN encoder layer under BERT's names: attention.self.{query,key,value}, attention.output.{dense,LayerNorm},
/// intermediate.dense, output.{dense,LayerNorm}. h = LN(x + W_o·attn(x)); out = LN(h + W_2·act(W_1·h)).
/// </summary>
public sealed class BertLayer : ModuleScope
{
    readonly Linear query, key, value, attentionDense, intermediate, output;
    readonly LayerNorm attentionNorm, outputNorm;
    readonly EncoderConfig c;

    public BertLayer(EncoderConfig c) : base(nameof(BertLayer))
    {
        this.c = c;
        int h = c.HiddenSize;
        var attention = Add("attention", new ModuleScope("BertAttention"));
        var self = attention.Add("self", new ModuleScope("BertSelfAttention"));
        query = self.Add("query", nn.Linear(h, h));
        key = self.Add("key", nn.Linear(h, h));
        value = self.Add("value", nn.Linear(h, h));
        var selfOutput = attention.Add("output", new ModuleScope("BertSelfOutput"));
        attentionDense = selfOutput.Add("dense", nn.Linear(h, h));
        attentionNorm = selfOutput.Add("LayerNorm", nn.LayerNorm(h, c.LayerNormEps));
        intermediate = Add("intermediate", new ModuleScope("BertIntermediate")).Add("dense", nn.Linear(h, c.IntermediateSize));
        var outputScope = Add("output", new ModuleScope("BertOutput"));
        output = outputScope.Add("dense", nn.Linear(c.IntermediateSize, h));
        outputNorm = outputScope.Add("LayerNorm", nn.LayerNorm(h, c.LayerNormEps));
    }

    public Tensor Forward(Tensor x, Tensor keyMask)
    {
        var attended = EncoderAttention.Forward(x, query, key, value, c.NumHeads, c.HeadDim, keyMask);
        var h = attentionNorm.forward(x.Plus(attentionDense.forward(attended)));
        return outputNorm.forward(h.Plus(output.forward(c.Activation.Apply(intermediate.forward(h)))));
    }
}

/// <summary>BertModel / RobertaModel: embeddings, encoder.layer.N, and (BERT only) the tanh pooler over [CLS].</summary>
public sealed class BertModel : ModuleScope
{
    readonly BertEmbeddings embeddings;
    readonly ModuleList<BertLayer> layers;
    readonly Linear? pooler;

    public BertModel(EncoderConfig c, bool withPooler) : base(nameof(BertModel))
    {
        embeddings = Add("embeddings", new BertEmbeddings(c));
        layers = Add("encoder", new ModuleScope("BertEncoder")).Add("layer", nn.ModuleList(Enumerable.Range(0, c.NumLayers).Select(_ => new BertLayer(c)).ToArray()));
        if (withPooler) pooler = Add("pooler", new ModuleScope("BertPooler")).Add("dense", nn.Linear(c.HiddenSize, c.HiddenSize));
    }

    /// <summary>Hidden states [B, T, hidden] of the last layer.</summary>
    public Tensor Forward(Tensor ids, Tensor typeIds, Tensor positions, Tensor valid)
    {
        var mask = EncoderAttention.KeyMask(valid);
        var x = embeddings.Forward(ids, typeIds, positions);
        foreach (var layer in layers) x = layer.Forward(x, mask);
        return x;
    }

    /// <summary>BertPooler: tanh(dense(h[:, 0])).</summary>
    public Tensor Pool(Tensor hidden) => tanh(pooler!.forward(hidden.select(1, 0)));
}
