using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Decoding;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>
/// A reward model whose head has one value per vocabulary token: a causal LM (<see cref="CausalLM"/>, its
/// <c>lm_head</c>) used as a reward model, so ONE forward gives the value of every candidate next token.
/// <list type="bullet">
/// <item><see cref="RewardObjective.Farma"/> (Rashid et al., ICML 2025): the head's logit of v at prefix y&lt;t is
/// the reward of the extended prefix, r(x, y&lt;t ∘ v) := RM(x, y&lt;t)[v]; the reward of a whole response is the
/// logit of its last token, RM(x, y&lt;L)[y_L].</item>
/// <item><see cref="RewardObjective.Genarm"/> (Xu et al., ICLR 2025): an autoregressive reward model, whose head's
/// log-softmax is log π_r(v | x, y&lt;t) and whose reward of a response is Σ_t log π_r(y_t | x, y&lt;t).</item>
/// </list>
/// HOW IT IS SAVED AND RECOGNISED: as an ordinary Hugging Face causal-LM folder (<c>LlamaForCausalLM</c>…, with
/// <c>lm_head</c>, loadable by transformers' AutoModelForCausalLM as both papers' code loads theirs), whose
/// config.json carries <c>"pargs_objective": "farma"</c> or <c>"genarm"</c>. That field is what makes a
/// causal-LM folder a reward model: <see cref="RewardModels.Load"/> reads it and builds this class (a scalar
/// <c>score</c> head and the objectives full/partial build <see cref="RewardModel"/>).
/// </summary>
public sealed class VocabularyRewardModel : IRewardModel, IDisposable
{
    public VocabularyRewardModel(CausalLM model, RewardObjective objective)
    {
        if (!objective.HasVocabularyHead())
            throw new ArgumentException($"objective {objective.ToConfigValue()} has a scalar head; use RewardModel");
        Model = model;
        Objective = objective;
    }

    /// <summary>The causal LM whose head gives the per-token values.</summary>
    public CausalLM Model { get; }
    /// <summary>Farma or Genarm: how the head's values are read.</summary>
    public RewardObjective Objective { get; }
    public ModelConfig Config => Model.Config;
    public ITokenizer? Tokenizer => Model.Tokenizer;
    public string Source => Model.Source;

    /// <summary>
    /// The head's values [..., V] from logits [..., V]: FaRMA's rewards are the logits themselves; GenARM's values
    /// are log π_r (log-softmax), so that Σ of them over a response is its reward.
    /// </summary>
    public Tensor ValuesFromLogits(Tensor logits) => Objective == RewardObjective.Genarm ? logits.log_softmax(-1) : logits; // one op: nothing to hold

    /// <summary>The head's values [B, T, V] at every position of a right-padded batch (position t: the values of the tokens that may follow 0..t).</summary>
    public Tensor Values(Tensor ids, Tensor valid)
    {
        using var scope = NewDisposeScope(); // the logits are an intermediate of GenARM's log-softmax (TransformerBackbone.ForwardInScope says why)
        return scope.MoveToOuter(ValuesFromLogits(Model.Logits(ids, valid)));
    }

    /// <summary>
    /// FaRMA: the reward of each whole row [B], RM(x, y&lt;L)[y_L] (the logit of the row's last real token at the
    /// position before it). GenARM's reward is a sum over the RESPONSE tokens, which a row without its prompt
    /// boundary cannot give: refused (its decoding reads the per-token values instead).
    /// </summary>
    public Tensor SequenceRewards(Tensor ids, Tensor valid)
    {
        if (Objective == RewardObjective.Genarm)
            throw new PargsException($"{Source}: a GenARM reward model scores a response given its prompt (Σ log π_r over the response), not a whole sequence; use it with --method genarm");
        using var scope = NewDisposeScope(); // the gathers' intermediates (TransformerBackbone.ForwardInScope says why)
        var lengths = valid.to(ScalarType.Int64).sum(1);
        using var two = 2.ToScalar(); // held across the comparison: an implicit Scalar can be freed mid-call (Models/HeldScalars)
        if ((lengths < two).any().item<bool>())
            throw new PargsException($"{Source}: a FaRMA reward needs at least two tokens (the reward of token t is read at position t − 1)");
        var logits = Model.Logits(ids, valid);                                      // [B, T, V]
        var before = lengths.Minus(2).view(-1, 1, 1).expand(-1, 1, logits.shape[2]);
        var row = logits.gather(1, before).squeeze(1);                              // [B, V] at position L − 2
        var last = ids.gather(1, lengths.Minus(1).view(-1, 1));                        // [B, 1] token L − 1
        return scope.MoveToOuter(row.gather(1, last).squeeze(1));
    }

    /// <inheritdoc/>
    public ICandidateScorer OpenScorer(LanguageModelInfo lm, int capacity, CandidateScoringCounts counts)
    {
        RequireSharedVocabulary(lm);
        return new VocabularyScorer(this, capacity, counts);
    }

    /// <inheritdoc/>
    public ICandidateScorer OpenReferenceScorer(LanguageModelInfo lm, CandidateScoringCounts counts)
    {
        RequireSharedVocabulary(lm);
        return new RecomputeVocabularyScorer(this, counts);
    }

    /// <summary>The head's values are indexed by LM ids: a reward model over another vocabulary cannot guide.</summary>
    public void RequireSharedVocabulary(LanguageModelInfo lm)
    {
        if (!VocabularyBridge.SharesVocabulary(lm, this))
            throw new PargsException($"{Source}: a {Objective.ToConfigValue()} reward model's head is indexed by token ids, so it must share the language model's vocabulary ({lm.Source} has {lm.VocabSize} tokens, the reward model {Config.VocabSize}{(lm.VocabSize == Config.VocabSize ? " with different token bytes" : "")})");
    }

    /// <summary>
    /// A reward model to train, started from a base LM's weights (both papers initialise the reward model from
    /// the base/SFT model, head included).
    /// </summary>
    public static VocabularyRewardModel FromCausalLM(CheckpointContents lmCheckpoint, RewardObjective objective)
    {
        var model = CausalLM.FromCheckpoint(lmCheckpoint);
        model.Tokenizer = lmCheckpoint.Tokenizer;
        model.train();
        return new VocabularyRewardModel(model, objective);
    }

    /// <summary>Writes the Hugging Face causal-LM folder with <c>pargs_objective</c> (atomically replaced).</summary>
    public void Save(string dir)
    {
        var extra = new Dictionary<string, JsonNode?> { [RewardModel.ObjectiveField] = Objective.ToConfigValue() };
        StateDict.Use(Model.StateDictForSaving(), weights => HuggingFaceFolder.Save(dir, Config, Model.Architecture, weights, Tokenizer, extra));
    }

    /// <summary>
    /// Loads a folder written by <see cref="Save"/> (its <c>pargs_objective</c> must be farma or genarm) with its
    /// tokenizer; <paramref name="requireTokenizer"/> = false allows a weights-only folder (as <see cref="RewardModel.Load"/>).
    /// </summary>
    public static VocabularyRewardModel Load(string path, string? tokenizerPath = null, bool requireTokenizer = true)
    {
        var objective = RewardModel.ReadObjective(path);
        if (objective is not { } o || !o.HasVocabularyHead())
            throw new PargsException($"{path}: config.json has no \"{RewardModel.ObjectiveField}\": \"farma\" or \"genarm\"; this is not a FaRMA or GenARM reward model");
        using var contents = CheckpointLoader.Load(path);
        var lm = CausalLM.FromCheckpoint(contents);
        bool hasTokenizerFile = contents.Format == "hf-folder" && File.Exists(Path.Combine(contents.Source, HuggingFaceFolder.TokenizerFile));
        lm.Tokenizer = contents.Tokenizer
            ?? (requireTokenizer || tokenizerPath != null || hasTokenizerFile ? TokenizerLoader.ForCheckpoint(contents, tokenizerPath) : null);
        return new VocabularyRewardModel(lm, o);
    }

    public void Dispose() => Model.Dispose();
}

/// <summary>Loads any reward model folder Pargs writes, by its config.json: a scalar-head one or a vocabulary-head one.</summary>
public static class RewardModels
{
    /// <summary>
    /// <c>pargs_objective</c> farma / genarm → <see cref="VocabularyRewardModel"/>; anything else (full, partial,
    /// none) → <see cref="RewardModel"/> with its <c>score</c> head.
    /// </summary>
    public static IRewardModel Load(string path, string? tokenizerPath = null, bool requireTokenizer = true)
        => RewardModel.ReadObjective(path) is { } o && o.HasVocabularyHead()
            ? VocabularyRewardModel.Load(path, tokenizerPath, requireTokenizer)
            : RewardModel.Load(path, tokenizerPath, requireTokenizer);
}
