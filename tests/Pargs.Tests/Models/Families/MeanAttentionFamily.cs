using System.Text.Json.Nodes;
using Pargs.Models;
using Pargs.Models.Families;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// A family that exists only in the tests, to prove that adding one is a folder and a registration: a tiny
/// "mean attention" transformer. Each layer lets every token attend over the earlier ones with q = k = v = the
/// hidden state split into heads (no projections, so the KV cache holds the hidden states), then adds
/// <c>residual_scale</c> · tanh(proj(x)). No positional encoding beyond causality. <c>residual_scale</c> is a
/// setting only this family has, kept in its own <see cref="MeanAttentionSettings"/> (ModelConfig.Extras).
/// </summary>
public sealed class MeanAttentionFamily : IModelFamily
{
    public const string ModelType = "pargs-mean-attention";
    public static readonly MeanAttentionFamily Instance = new();

    /// <summary>Registers the family once (the registry ignores a second registration of the same object).</summary>
    public static void EnsureRegistered() => ModelFamilies.Register(Instance);

    public string Name => "mean-attention";
    public IReadOnlyList<string> ModelTypes { get; } = [ModelType];
    public string HuggingFacePrefix => "body";
    public IReadOnlyList<string> Architectures { get; } = ["MeanAttentionForCausalLM", "MeanAttentionForSequenceClassification"];
    public string CausalLMArchitecture(ModelConfig config) => "MeanAttentionForCausalLM";
    public string SequenceClassificationArchitecture(ModelConfig config) => "MeanAttentionForSequenceClassification";

    public IReadOnlyList<ConfigField> ConfigFields(string modelType) =>
    [
        new("vocab_size", ConfigFieldUse.Honoured), new("width", ConfigFieldUse.Honoured), new("depth", ConfigFieldUse.Honoured),
        new("num_heads", ConfigFieldUse.Honoured), new("context", ConfigFieldUse.Honoured), new("residual_scale", ConfigFieldUse.Honoured),
    ];

    public ModelConfig ReadConfig(JsonObject json, string source)
    {
        var c = new ConfigJson(json, source);
        int heads = c.Int("num_heads");
        return new ModelConfig
        {
            ModelType = ModelType,
            VocabSize = c.Int("vocab_size"),
            HiddenSize = c.Int("width"),
            IntermediateSize = c.Int("width"),
            NumLayers = c.Int("depth"),
            NumHeads = heads,
            NumKvHeads = heads,
            MaxPositions = c.Int("context", 64),
            TieWordEmbeddings = c.Bool("tie_word_embeddings", true),
            BosTokenId = c.TokenId("bos_token_id"),
            EosTokenId = c.TokenId("eos_token_id"),
            PadTokenId = c.TokenId("pad_token_id"),
            Extras = new MeanAttentionSettings(c.Double("residual_scale", 1.0)),
        };
    }

    public void WriteConfig(ModelConfig config, JsonObject json)
    {
        json["vocab_size"] = config.VocabSize;
        json["width"] = config.HiddenSize;
        json["depth"] = config.NumLayers;
        json["num_heads"] = config.NumHeads;
        json["context"] = config.MaxPositions;
        json["residual_scale"] = Settings(config).ResidualScale;
    }

    public static MeanAttentionSettings Settings(ModelConfig config) => config.Extras as MeanAttentionSettings ?? new MeanAttentionSettings(1.0);

    public TransformerBackbone CreateBackbone(ModelConfig config) => new MeanAttentionModel(config);

    public IReadOnlyList<TensorSpec> BackboneTensors(ModelConfig c)
    {
        var list = new List<TensorSpec> { new("tokens.weight", [c.VocabSize, c.HiddenSize]) };
        for (int i = 0; i < c.NumLayers; i++)
        {
            list.Add(new($"layers.{i}.weight", [c.HiddenSize, c.HiddenSize]));
            list.Add(new($"layers.{i}.bias", [c.HiddenSize]));
        }
        return list;
    }

    public bool DecodesColumnMajor => true;

    public IEnumerable<(string Field, object? Value)> DescribeConfig(ModelConfig config)
    {
        yield return ("residual_scale", Settings(config).ResidualScale);
    }
}

/// <summary>The test family's own config setting.</summary>
public sealed record MeanAttentionSettings(double ResidualScale);

public sealed class MeanAttentionModel : TransformerBackbone
{
    readonly Embedding tokens;
    readonly ModuleList<Linear> layers;

    public MeanAttentionModel(ModelConfig config) : base(nameof(MeanAttentionModel), config)
    {
        tokens = nn.Embedding(config.VocabSize, config.HiddenSize);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(_ => nn.Linear(config.HiddenSize, config.HiddenSize)).ToArray());
        register_module("tokens", tokens);
        register_module("layers", layers);
    }

    public override Parameter TokenEmbeddingWeight => (Parameter)tokens.weight!;

    protected override Tensor ForwardInScope(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache)
    {
        double scale = MeanAttentionFamily.Settings(Config).ResidualScale;
        long b = inputIds.shape[0], t = inputIds.shape[1];
        int h = Config.NumHeads, d = Config.HeadDim;
        var x = tokens.forward(inputIds);
        for (int i = 0; i < layers.Count; i++)
        {
            var heads = x.view(b, t, h, d).transpose(1, 2);
            var (k, v) = cache is null ? (heads, heads) : cache.Write(i, heads, heads);
            x = x.Plus(Attend(heads, k, v, mask, h, h));
            x = x.Plus(layers[i].forward(x).tanh().Times(scale));
        }
        return x;
    }
}
