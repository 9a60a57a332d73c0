using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Encoders;

/// <summary>
/// DeBERTa-v2/v3 embeddings: word (+ absolute position when position_biased_input, + token type when the model has a
/// type table) at embedding_size, projected to hidden by embed_proj when the widths differ, LayerNorm, then zeroed at
/// padding as transformers does.
/// </summary>
public sealed class DebertaV2Embeddings : ModuleScope
{
    readonly Embedding word;
    readonly Embedding? position, tokenType;
    readonly Linear? project;
    readonly LayerNorm norm;

    public DebertaV2Embeddings(EncoderConfig c) : base(nameof(DebertaV2Embeddings))
    {
        var d = c.Deberta!;
        word = Add("word_embeddings", nn.Embedding(c.VocabSize, d.EmbeddingSize));
        if (d.PositionBiasedInput) position = Add("position_embeddings", nn.Embedding(c.MaxPositionEmbeddings, d.EmbeddingSize));
        if (c.TypeVocabSize > 0) tokenType = Add("token_type_embeddings", nn.Embedding(c.TypeVocabSize, d.EmbeddingSize));
        if (d.EmbeddingSize != c.HiddenSize) project = Add("embed_proj", nn.Linear(d.EmbeddingSize, c.HiddenSize, hasBias: false));
        norm = Add("LayerNorm", nn.LayerNorm(c.HiddenSize, c.LayerNormEps));
    }

    public Tensor Forward(Tensor ids, Tensor typeIds, Tensor positions, Tensor valid)
    {
        var x = word.forward(ids);
        if (position is not null) x = x.Plus(position.forward(positions));
        if (tokenType is not null) x = x.Plus(tokenType.forward(typeIds));
        if (project is not null) x = project.forward(x);
        return norm.forward(x) * valid.to(x.dtype).unsqueeze(2);
    }
}

/// <summary>
/// DeBERTa's disentangled self-attention (He et al. 2021, eq. 4; transformers' DisentangledSelfAttention): the score of
/// query i and key j is content→content q_i·k_j, plus content→position q_i·K^r_{δ(i,j)} (c2p) and position→content
/// k_j·Q^r_{δ(j,i)} (p2c) where δ is the (log-bucketed) relative distance clamped to the attention span, all divided by
/// √(d·(1 + number of position terms)). The relative projections are the content ones when share_att_key, else
/// pos_key_proj / pos_query_proj.
/// </summary>
public sealed class DisentangledSelfAttention : ModuleScope
{
    readonly Linear query, key, value;
    readonly Linear? posKey, posQuery;
    readonly EncoderConfig c;
    readonly DebertaSettings d;

    public DisentangledSelfAttention(EncoderConfig c) : base(nameof(DisentangledSelfAttention))
    {
        this.c = c;
        d = c.Deberta!;
        int all = c.NumHeads * c.HeadDim;
        query = Add("query_proj", nn.Linear(c.HiddenSize, all));
        key = Add("key_proj", nn.Linear(c.HiddenSize, all));
        value = Add("value_proj", nn.Linear(c.HiddenSize, all));
        if (d.RelativeAttention && !d.ShareAttKey)
        {
            if (d.C2P) posKey = Add("pos_key_proj", nn.Linear(c.HiddenSize, all));
            if (d.P2C) posQuery = Add("pos_query_proj", nn.Linear(c.HiddenSize, all));
        }
    }

    /// <param name="x">[B, T, hidden]</param>
    /// <param name="keyMask">[B, 1, 1, T], true at real tokens</param>
    /// <param name="relativePositions">[T, T]: δ(i, j) of query i and key j (bucketed)</param>
    /// <param name="relativeEmbeddings">[2·span, hidden] (normalised when norm_rel_ebd says so)</param>
    public Tensor Forward(Tensor x, Tensor keyMask, Tensor? relativePositions, Tensor? relativeEmbeddings)
    {
        long b = x.shape[0], t = x.shape[1];
        int h = c.NumHeads, hd = c.HeadDim;
        Tensor Split(Tensor y) => y.view(y.shape[0], y.shape[1], h, hd).transpose(1, 2); // [·, H, ·, d]
        var q = Split(query.forward(x));
        var k = Split(key.forward(x));
        var v = Split(value.forward(x));
        int scaleFactor = 1 + (d.C2P ? 1 : 0) + (d.P2C ? 1 : 0);
        // Explicit Scalars held across their calls: TorchSharp frees an implicit Scalar in its finalizer and keeps no reference to it across the native call, so a collection during the call can free what libtorch reads ("Unknown scalar type").
        using Scalar scale = Math.Sqrt(hd * scaleFactor).ToScalar(), masked = float.NegativeInfinity.ToScalar();
        var scores = matmul(q, k.transpose(-1, -2)) / scale;
        if (d.RelativeAttention)
        {
            int span = d.AttentionSpan;
            using Scalar spanScalar = span.ToScalar(), low = 0.ToScalar(), high = (2 * span - 1).ToScalar();
            var rel = relativeEmbeddings!.narrow(0, 0, 2 * span).unsqueeze(0); // [1, 2span, hidden]
            if (d.C2P)
            {
                var posK = Split((d.ShareAttKey ? key : posKey!).forward(rel)); // [1, H, 2span, d]
                var c2p = matmul(q, posK.transpose(-1, -2)); // [B, H, T, 2span]
                var index = relativePositions!.Plus(spanScalar).clamp(low, high).expand(b, h, t, t);
                scores = scores.Plus(c2p.gather(-1, index) / scale);
            }
            if (d.P2C)
            {
                var posQ = Split((d.ShareAttKey ? query : posQuery!).forward(rel));
                var p2c = matmul(k, posQ.transpose(-1, -2)); // [B, H, T(keys), 2span]
                var index = (-relativePositions!).Plus(spanScalar).clamp(low, high).expand(b, h, t, t);
                scores = scores.Plus(p2c.gather(-1, index).transpose(-1, -2) / scale);
            }
        }
        scores = scores.masked_fill(keyMask.logical_not(), masked);
        var context = matmul(softmax(scores, -1), v);
        return context.transpose(1, 2).reshape(b, t, h * hd);
    }
}

/// <summary>A DeBERTa-v2 layer under transformers' names; post-LN like BERT's, with disentangled attention.</summary>
public sealed class DebertaV2Layer : ModuleScope
{
    readonly DisentangledSelfAttention self;
    readonly Linear attentionDense, intermediate, output;
    readonly LayerNorm attentionNorm, outputNorm;
    readonly EncoderConfig c;

    public DebertaV2Layer(EncoderConfig c) : base(nameof(DebertaV2Layer))
    {
        this.c = c;
        int h = c.HiddenSize;
        var attention = Add("attention", new ModuleScope("DebertaV2Attention"));
        self = attention.Add("self", new DisentangledSelfAttention(c));
        var selfOutput = attention.Add("output", new ModuleScope("DebertaV2SelfOutput"));
        attentionDense = selfOutput.Add("dense", nn.Linear(h, h));
        attentionNorm = selfOutput.Add("LayerNorm", nn.LayerNorm(h, c.LayerNormEps));
        intermediate = Add("intermediate", new ModuleScope("DebertaV2Intermediate")).Add("dense", nn.Linear(h, c.IntermediateSize));
        var outputScope = Add("output", new ModuleScope("DebertaV2Output"));
        output = outputScope.Add("dense", nn.Linear(c.IntermediateSize, h));
        outputNorm = outputScope.Add("LayerNorm", nn.LayerNorm(h, c.LayerNormEps));
    }

    public Tensor Forward(Tensor x, Tensor keyMask, Tensor? relativePositions, Tensor? relativeEmbeddings)
    {
        var h = attentionNorm.forward(x.Plus(attentionDense.forward(self.Forward(x, keyMask, relativePositions, relativeEmbeddings))));
        return outputNorm.forward(h.Plus(output.forward(c.Activation.Apply(intermediate.forward(h)))));
    }
}

/// <summary>DebertaV2Model: embeddings and encoder (layer.N, rel_embeddings, the LayerNorm of norm_rel_ebd).</summary>
public sealed class DebertaV2Model : ModuleScope
{
    readonly DebertaV2Embeddings embeddings;
    readonly ModuleList<DebertaV2Layer> layers;
    readonly Embedding? relEmbeddings;
    readonly LayerNorm? relNorm;
    readonly DebertaSettings d;

    public DebertaV2Model(EncoderConfig c) : base(nameof(DebertaV2Model))
    {
        d = c.Deberta!;
        embeddings = Add("embeddings", new DebertaV2Embeddings(c));
        var encoder = Add("encoder", new ModuleScope("DebertaV2Encoder"));
        layers = encoder.Add("layer", nn.ModuleList(Enumerable.Range(0, c.NumLayers).Select(_ => new DebertaV2Layer(c)).ToArray()));
        if (d.RelativeAttention)
        {
            relEmbeddings = encoder.Add("rel_embeddings", nn.Embedding(2 * d.AttentionSpan, c.HiddenSize));
            if (d.NormRelEmbeddings) relNorm = encoder.Add("LayerNorm", nn.LayerNorm(c.HiddenSize, c.LayerNormEps));
        }
    }

    public Tensor Forward(Tensor ids, Tensor typeIds, Tensor positions, Tensor valid)
    {
        var mask = EncoderAttention.KeyMask(valid);
        var x = embeddings.Forward(ids, typeIds, positions, valid);
        Tensor? relPos = null, relEmb = null;
        if (relEmbeddings is not null)
        {
            relPos = tensor(RelativePositions((int)ids.shape[1], d.PositionBuckets, d.MaxRelativePositions), [ids.shape[1], ids.shape[1]]);
            relEmb = relNorm is null ? relEmbeddings.weight! : relNorm.forward(relEmbeddings.weight!);
        }
        foreach (var layer in layers) x = layer.Forward(x, mask, relPos, relEmb);
        return x;
    }

    /// <summary>δ(i, j) = i − j for a sequence of <paramref name="length"/>, log-bucketed when buckets are set (row-major [T, T]).</summary>
    public static long[] RelativePositions(int length, int buckets, int maxPosition)
    {
        var result = new long[(long)length * length];
        for (int i = 0; i < length; i++)
            for (int j = 0; j < length; j++)
                result[(long)i * length + j] = buckets > 0 && maxPosition > 0 ? LogBucket(i - j, buckets, maxPosition) : i - j;
        return result;
    }

    /// <summary>
    /// transformers' make_log_bucket_position: distances within ±bucket/2 stay exact, longer ones share buckets that
    /// grow logarithmically up to max_position. Computed in float32 as torch does (the ceil makes the precision matter).
    /// </summary>
    public static long LogBucket(long relative, int bucketSize, int maxPosition)
    {
        int mid = bucketSize / 2;
        long abs = relative < mid && relative > -mid ? mid - 1 : Math.Abs(relative);
        if (abs <= mid) return relative;
        float logPos = MathF.Ceiling(MathF.Log((float)abs / mid) / MathF.Log((float)((maxPosition - 1) / (double)mid)) * (mid - 1)) + mid;
        return (long)(logPos * Math.Sign(relative));
    }
}
