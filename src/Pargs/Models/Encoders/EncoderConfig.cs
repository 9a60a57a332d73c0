namespace Pargs.Models.Encoders;

/// <summary>
/// The shape of an encoder classifier (config.json of a BERT, RoBERTa, DistilBERT or DeBERTa-v2/v3
/// …ForSequenceClassification), in transformers' vocabulary and with its defaults per model type
/// (<see cref="EncoderConfigReader"/>). DistilBERT's own names (dim, n_layers, hidden_dim…) are read into the
/// shared fields; settings only DeBERTa has are in <see cref="Deberta"/>.
/// </summary>
public sealed record EncoderConfig
{
    /// <summary>HF <c>model_type</c>: bert, roberta, distilbert, deberta-v2.</summary>
    public required string ModelType { get; init; }
    /// <summary>config.json <c>architectures[0]</c> (e.g. BertForSequenceClassification).</summary>
    public required string Architecture { get; init; }
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int NumLayers { get; init; }
    public int NumHeads { get; init; }
    /// <summary>Width of one head: hidden/heads, or DeBERTa's attention_head_size.</summary>
    public int HeadDim { get; init; }
    public int IntermediateSize { get; init; }
    /// <summary>Rows of the absolute position table (max_position_embeddings).</summary>
    public int MaxPositionEmbeddings { get; init; }
    /// <summary>Rows of the token type table (0: the model has none).</summary>
    public int TypeVocabSize { get; init; }
    public double LayerNormEps { get; init; }
    /// <summary>The feed-forward activation (hidden_act / DistilBERT's activation).</summary>
    public EncoderActivation Activation { get; init; }
    public int PadTokenId { get; init; }
    /// <summary>The classifier's labels, index → name (id2label; LABEL_i when config.json has none).</summary>
    public required IReadOnlyList<string> Labels { get; init; }
    /// <summary>problem_type multi_label_classification: each label an independent sigmoid (else one softmax over the labels).</summary>
    public bool MultiLabel { get; init; }
    public DebertaSettings? Deberta { get; init; }

    public int NumLabels => Labels.Count;

    /// <summary>
    /// The longest input the model reads: RoBERTa numbers positions from padding_idx + 1, so two rows of its
    /// table are never used by a real token.
    /// </summary>
    public int MaxTokens => ModelType == "roberta" ? MaxPositionEmbeddings - PadTokenId - 1 : MaxPositionEmbeddings;

    /// <summary>
    /// Whether the tokenizer's token type ids reach the model. transformers' BERT and DeBERTa tokenizers return
    /// token_type_ids; RoBERTa's and DistilBERT's do not (model_input_names), so those models see zeros whatever
    /// the post-processor says (RoBERTa's Rust post-processor gives 1 to the pair, which its 1-row table lacks).
    /// </summary>
    public bool ReadsTokenTypes => TypeVocabSize > 0 && ModelType is "bert" or "deberta-v2";
}

/// <summary>DeBERTa-v2/v3's disentangled attention settings (transformers' DebertaV2Config, with its getattr defaults).</summary>
public sealed record DebertaSettings
{
    /// <summary>Hidden width of the embeddings (embedding_size); ≠ hidden_size adds embed_proj.</summary>
    public int EmbeddingSize { get; init; }
    public bool RelativeAttention { get; init; }
    /// <summary>max_relative_positions, already replaced by max_position_embeddings when below 1.</summary>
    public int MaxRelativePositions { get; init; }
    /// <summary>position_buckets (≤ 0: no log buckets).</summary>
    public int PositionBuckets { get; init; }
    /// <summary>pos_att_type contains c2p (content → position).</summary>
    public bool C2P { get; init; }
    /// <summary>pos_att_type contains p2c (position → content).</summary>
    public bool P2C { get; init; }
    public bool ShareAttKey { get; init; }
    public bool PositionBiasedInput { get; init; }
    /// <summary>norm_rel_ebd contains layer_norm: the relative embeddings pass the encoder's LayerNorm.</summary>
    public bool NormRelEmbeddings { get; init; }
    public EncoderActivation PoolerActivation { get; init; }

    /// <summary>Relative distances the attention spans on each side: position_buckets when set, else max_relative_positions.</summary>
    public int AttentionSpan => PositionBuckets > 0 ? PositionBuckets : MaxRelativePositions;
}
