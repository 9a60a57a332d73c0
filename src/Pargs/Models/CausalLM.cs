using Pargs.Checkpoints;
using Pargs.Models.Cpu;
using Pargs.Tokenizers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// A causal language model: a transformer backbone and an output head <c>lm_head</c> (tied to the token
/// embedding when the config says so). Parameter names match Hugging Face's ...ForCausalLM one to one.
/// </summary>
public sealed class CausalLM : nn.Module
{
    readonly Linear? lmHead;
    readonly Families.IModelFamily family;

    public CausalLM(ModelConfig config) : base(nameof(CausalLM))
    {
        Config = config;
        family = config.Family;
        Backbone = TransformerBackbone.BuildInto(this, config);
        if (!config.TieWordEmbeddings)
        {
            lmHead = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
            register_module("lm_head", lmHead);
        }
    }

    public ModelConfig Config { get; }
    public TransformerBackbone Backbone { get; }
    public ITokenizer? Tokenizer { get; set; }
    public GenerationDefaults? Generation { get; set; }
    /// <summary>Where the weights came from, for messages and generation records.</summary>
    public string Source { get; set; } = "(in memory)";

    /// <summary>What decoding needs to know about the model (tokenizer, vocabulary, context, EOS).</summary>
    public Engine.LanguageModelInfo Info => new(Source, Tokenizer, Config.VocabSize, Config.MaxPositions, Config.EosTokenId)
    {
        MoreStopIds = Config.EosTokenIds.Concat(Generation?.EosTokenIds ?? []).Distinct().ToArray(),
    };

    /// <summary>The Hugging Face architecture name written into config.json.</summary>
    public string Architecture => Config.Family.CausalLMArchitecture(Config);

    /// <summary>
    /// Next-token logits from hidden states [..., hidden] → [..., vocab]. A decoding step's few rows go through
    /// <see cref="CpuLinear"/> (the head is the largest weight of a small model, streamed once per step).
    /// </summary>
    public Tensor LogitsFromHidden(Tensor hidden)
    {
        var weight = lmHead?.weight ?? Backbone.TokenEmbeddingWeight;
        return family.AdjustLogits(CpuLinear.TryForward(hidden, weight) ?? nn.functional.linear(hidden, weight), Config);
    }

    /// <summary>
    /// Logits for every position of a padded batch [B, T] (no cache): what perplexity, DPO and the
    /// naive decoding oracle need. <paramref name="valid"/> [B, T] marks real tokens (null = all real).
    /// </summary>
    public Tensor Logits(Tensor inputIds, Tensor? valid = null)
    {
        valid ??= ones_like(inputIds, dtype: ScalarType.Bool);
        var hidden = Backbone.ForwardPadded(inputIds, valid);
        return LogitsFromHidden(hidden);
    }

    /// <summary>
    /// Loads a causal LM and its tokenizer from a Hugging Face folder, a .gguf file or a llama2.c .bin
    /// (<paramref name="tokenizerPath"/> overrides the tokenizer found beside or inside the checkpoint).
    /// </summary>
    public static CausalLM Load(string path, string? tokenizerPath = null)
    {
        using var contents = CheckpointLoader.Load(path);
        var model = FromCheckpoint(contents);
        model.Tokenizer = TokenizerLoader.ForCheckpoint(contents, tokenizerPath);
        return model;
    }

    /// <summary>Builds the model from checkpoint tensors (strict: every parameter must be present).</summary>
    public static CausalLM FromCheckpoint(CheckpointContents contents)
    {
        var model = new CausalLM(contents.Config)
        {
            Tokenizer = contents.Tokenizer,
            Generation = contents.Generation,
            Source = contents.Source,
        };
        bool tied = contents.Config.TieWordEmbeddings;
        // A reward-model or classification checkpoint has "score.weight" instead of "lm_head": it is not an LM.
        if (!contents.Tensors.ContainsKey("lm_head.weight") && contents.Tensors.ContainsKey("score.weight"))
            throw new PargsException($"{contents.Source}: this checkpoint has a score head (a reward model), not an lm_head; load it as a reward model");
        StateDict.Load(model, contents.Tensors, contents.Source,
            mayBeUnused: name => tied && name == "lm_head.weight");
        model.eval();
        return model;
    }

    /// <summary>Parameters by HF name (tied head left out, as Hugging Face saves it).</summary>
    public Dictionary<string, Tensor> StateDictForSaving() => StateDict.Snapshot(this);
}
