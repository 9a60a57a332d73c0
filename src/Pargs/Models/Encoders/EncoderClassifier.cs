using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models.Encoders;

/// <summary>
/// An encoder …ForSequenceClassification: ids, token types and validity of a right-padded batch [B, T] → the
/// classifier's logits [B, num_labels], read from the first token ([CLS] / &lt;s&gt;) as transformers' heads do.
/// Parameters carry transformers' names, so a checkpoint loads one to one (<see cref="EncoderCheckpoint"/>).
/// </summary>
public abstract class EncoderClassifier(string name, EncoderConfig config) : ModuleScope(name)
{
    public EncoderConfig Config { get; } = config;

    /// <summary>Logits [B, num_labels]. Rows are right-padded; <paramref name="typeIds"/> are ignored by models without types.</summary>
    public Tensor Logits(Tensor ids, Tensor typeIds, Tensor valid)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(LogitsInScope(ids, typeIds, valid));
    }

    /// <summary>
    /// The model type's forward (<see cref="Logits"/>'s contract), run inside a DisposeScope that <see cref="Logits"/>
    /// opens: every intermediate stays referenced until the forward returns (TorchSharp 0.107 frees an unreferenced
    /// tensor's handle in its finalizer, on whichever thread collects; see TransformerBackbone.ForwardInScope).
    /// </summary>
    protected abstract Tensor LogitsInScope(Tensor ids, Tensor typeIds, Tensor valid);

    /// <summary>Absolute positions 0..T−1 of every row (right padding keeps each row's real tokens at 0..len−1).</summary>
    protected static Tensor Arange(Tensor ids) => HeldScalars.Arange(ids.shape[1], ScalarType.Int64).unsqueeze(0).expand(ids.shape[0], -1);

    /// <summary>
    /// The classifier's last Linear (logits = its output): the layer a reward-model run re-initialises to one label.
    /// RoBERTa's head is two layers (classifier.dense, classifier.out_proj); the others' is classifier.
    /// </summary>
    public static string ScoreLayer(string modelType) => modelType == "roberta" ? "classifier.out_proj" : "classifier";

    /// <summary>The encoder's name prefix inside the classifier (bert., roberta., distilbert., deberta.): what a pretrained checkpoint provides.</summary>
    public static string BackbonePrefix(string modelType) => modelType switch
    {
        "deberta-v2" => "deberta.",
        _ => modelType + ".",
    };

    /// <summary>The module for <paramref name="config"/>'s model type, with fresh weights.</summary>
    public static EncoderClassifier Create(EncoderConfig config) => config.ModelType switch
    {
        "bert" => new BertForSequenceClassification(config),
        "roberta" => new RobertaForSequenceClassification(config),
        "distilbert" => new DistilBertForSequenceClassification(config),
        "deberta-v2" => new DebertaV2ForSequenceClassification(config),
        var other => throw new PargsException($"no encoder classifier for model_type \"{other}\""),
    };
}

/// <summary>BertForSequenceClassification: classifier(tanh(pooler.dense(h[CLS]))).</summary>
public sealed class BertForSequenceClassification : EncoderClassifier
{
    readonly BertModel bert;
    readonly Linear classifier;

    public BertForSequenceClassification(EncoderConfig c) : base(nameof(BertForSequenceClassification), c)
    {
        bert = Add("bert", new BertModel(c, withPooler: true));
        classifier = Add("classifier", nn.Linear(c.HiddenSize, c.NumLabels));
    }

    protected override Tensor LogitsInScope(Tensor ids, Tensor typeIds, Tensor valid)
        => classifier.forward(bert.Pool(bert.Forward(ids, typeIds, Arange(ids), valid)));
}

/// <summary>
/// RobertaForSequenceClassification: no pooler; classifier.out_proj(tanh(classifier.dense(h[&lt;s&gt;]))). Positions
/// are counted from padding_idx + 1 over the non-pad tokens, as transformers' create_position_ids_from_input_ids does.
/// </summary>
public sealed class RobertaForSequenceClassification : EncoderClassifier
{
    readonly BertModel roberta;
    readonly Linear dense, outProj;

    public RobertaForSequenceClassification(EncoderConfig c) : base(nameof(RobertaForSequenceClassification), c)
    {
        roberta = Add("roberta", new BertModel(c, withPooler: false));
        var head = Add("classifier", new ModuleScope("RobertaClassificationHead"));
        dense = head.Add("dense", nn.Linear(c.HiddenSize, c.HiddenSize));
        outProj = head.Add("out_proj", nn.Linear(c.HiddenSize, c.NumLabels));
    }

    /// <summary>padding_idx + cumsum(ids ≠ pad) at real tokens, padding_idx at pad tokens.</summary>
    public static Tensor PositionIds(Tensor ids, int paddingIdx)
    {
        // An explicit Scalar held across its calls: TorchSharp frees an implicit Scalar in its finalizer and keeps no reference to it across the native call, so a collection during the call can free what libtorch reads ("Unknown scalar type").
        using var pad = paddingIdx.ToScalar();
        var notPad = ids.ne(pad).to(ScalarType.Int64);
        return (cumsum(notPad, 1) * notPad).Plus(pad);
    }

    protected override Tensor LogitsInScope(Tensor ids, Tensor typeIds, Tensor valid)
    {
        var hidden = roberta.Forward(ids, typeIds, PositionIds(ids, Config.PadTokenId), valid);
        return outProj.forward(tanh(dense.forward(hidden.select(1, 0))));
    }
}

/// <summary>DistilBertForSequenceClassification: classifier(relu(pre_classifier(h[CLS]))).</summary>
public sealed class DistilBertForSequenceClassification : EncoderClassifier
{
    readonly DistilBertModel distilbert;
    readonly Linear preClassifier, classifier;

    public DistilBertForSequenceClassification(EncoderConfig c) : base(nameof(DistilBertForSequenceClassification), c)
    {
        distilbert = Add("distilbert", new DistilBertModel(c));
        preClassifier = Add("pre_classifier", nn.Linear(c.HiddenSize, c.HiddenSize));
        classifier = Add("classifier", nn.Linear(c.HiddenSize, c.NumLabels));
    }

    protected override Tensor LogitsInScope(Tensor ids, Tensor typeIds, Tensor valid)
        => classifier.forward(nn.functional.relu(preClassifier.forward(distilbert.Forward(ids, Arange(ids), valid).select(1, 0))));
}

/// <summary>DebertaV2ForSequenceClassification: classifier(ContextPooler(h)) with the pooler act(pooler.dense(h[CLS])).</summary>
public sealed class DebertaV2ForSequenceClassification : EncoderClassifier
{
    readonly DebertaV2Model deberta;
    readonly Linear pooler, classifier;

    public DebertaV2ForSequenceClassification(EncoderConfig c) : base(nameof(DebertaV2ForSequenceClassification), c)
    {
        deberta = Add("deberta", new DebertaV2Model(c));
        pooler = Add("pooler", new ModuleScope("ContextPooler")).Add("dense", nn.Linear(c.HiddenSize, c.HiddenSize));
        classifier = Add("classifier", nn.Linear(c.HiddenSize, c.NumLabels));
    }

    protected override Tensor LogitsInScope(Tensor ids, Tensor typeIds, Tensor valid)
    {
        var hidden = deberta.Forward(ids, typeIds, Arange(ids), valid);
        return classifier.forward(Config.Deberta!.PoolerActivation.Apply(pooler.forward(hidden.select(1, 0))));
    }
}
