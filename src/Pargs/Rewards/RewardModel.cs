using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Decoding;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Models.Families.Llama;
using Pargs.Tokenizers;
using Pargs.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Rewards;

/// <summary>
/// A reward model: a transformer backbone and a scalar head <c>score</c> (Linear hidden→1, no bias). Parameter
/// names match Hugging Face's LlamaForSequenceClassification / GPT2ForSequenceClassification with
/// <c>num_labels = 1</c>, so a checkpoint maps one to one. Because the backbone is causal, the hidden state at
/// position t has seen exactly tokens 0..t: scoring every position of one forward gives the reward of every
/// prefix, which is what partial-sequence training and decoding-time guidance need.
/// </summary>
public sealed class RewardModel : nn.Module, IRewardModel
{
    readonly Linear score;

    public RewardModel(ModelConfig config) : base(nameof(RewardModel))
    {
        Config = config;
        Backbone = TransformerBackbone.BuildInto(this, config);
        score = nn.Linear(config.HiddenSize, 1, hasBias: false);
        register_module("score", score);
    }

    /// <summary>
    /// The decode-only construction: <paramref name="backbone"/> holds the weights in their stored precision (views
    /// into the mapped file) and the score head — one row of hidden values, read on every candidate — is float32.
    /// </summary>
    RewardModel(ModelConfig config, LlamaStoredBackbone backbone, float[] scoreWeight) : base(nameof(RewardModel))
    {
        Config = config;
        Backbone = backbone;
        register_module(config.Family.HuggingFacePrefix, backbone);
        score = nn.Linear(config.HiddenSize, 1, hasBias: false);
        register_module("score", score);
        using (no_grad()) score.weight!.copy_(tensor(scoreWeight, 1, config.HiddenSize));
    }

    public ModelConfig Config { get; }
    public TransformerBackbone Backbone { get; }
    /// <summary>The backbone's weights in their stored precision when loaded for inference (<see cref="LoadForInference"/>); null for a float32 model.</summary>
    public StoredTensors? StoredWeights => (Backbone as LlamaStoredBackbone)?.Weights;
    public ITokenizer? Tokenizer { get; set; }
    /// <summary>What it was trained on, when known (config.json's <c>pargs_objective</c>).</summary>
    public RewardObjective? Objective { get; set; }
    /// <summary>Where the weights came from, for messages and generation records.</summary>
    public string Source { get; set; } = "(in memory)";

    /// <summary>
    /// Which token of a sequence its reward is read at: the last one (Pargs's own reward models, trained on every
    /// token, EOS padding included), or — for a reward model trained elsewhere whose config.json names a
    /// <c>pad_token_id</c> — the last token that is not padding, as transformers' …ForSequenceClassification
    /// reads it. With TRL's usual pad = EOS, that is the token before the trailing EOS; following transformers is
    /// what makes a TRL-trained reward model score the same here. Set by <see cref="Load"/>.
    /// </summary>
    public RewardReadout Readout { get; set; } = RewardReadout.LastToken;

    /// <summary>The pad id whose trailing runs are skipped when reading a reward, or null when the last token is read.</summary>
    public int? SkippedPadId => Readout == RewardReadout.LastNonPadToken ? Config.PadTokenId : null;

    /// <inheritdoc/>
    public ICandidateScorer OpenScorer(LanguageModelInfo lm, int capacity, CandidateScoringCounts counts)
        => TrailingPadScorer.Wrap(VocabularyBridge.ScorerFor(lm, this, capacity, counts), lm, this);

    /// <summary>The head's weight [1, hidden].</summary>
    public Parameter ScoreWeight => score.weight!;

    /// <summary>The Hugging Face architecture name written into config.json.</summary>
    public string Architecture => Config.Family.SequenceClassificationArchitecture(Config);

    /// <summary>
    /// A model with fresh random weights: TorchSharp's default initialisation, seeded through torch's global
    /// generator (as its module constructors draw), so the weights repeat for a seed when no other thread
    /// constructs modules at the same time; the score head has its own generator.
    /// </summary>
    public static RewardModel Create(ModelConfig config, long seed = 0)
    {
        manual_seed(seed);
        var model = new RewardModel(config);
        model.InitialiseScore(seed);
        return model;
    }

    /// <summary>
    /// A reward model whose backbone starts from a base LM's weights (the usual RLHF recipe); the LM head is
    /// dropped and the score head drawn from N(0, 1/√hidden) with <paramref name="seed"/>.
    /// </summary>
    public static RewardModel FromCausalLM(CheckpointContents lmCheckpoint, long seed)
    {
        var model = new RewardModel(lmCheckpoint.Config)
        {
            Tokenizer = lmCheckpoint.Tokenizer,
            Source = lmCheckpoint.Source,
        };
        StateDict.Load(model, lmCheckpoint.Tensors, lmCheckpoint.Source,
            mayBeMissing: name => name == "score.weight",
            mayBeUnused: name => name == "lm_head.weight");
        model.InitialiseScore(seed);
        return model;
    }

    /// <summary>A trained reward model (strict: the score head must be there).</summary>
    public static RewardModel FromCheckpoint(CheckpointContents contents)
    {
        if (!contents.Tensors.ContainsKey("score.weight"))
            throw new PargsException(
                $"{contents.Source}: this checkpoint has no score head (score.weight); it is a base language model, not a reward model " +
                "(train one with `pargs train-rm`, or check that the reward-model export saved the head)");
        var model = new RewardModel(contents.Config)
        {
            Tokenizer = contents.Tokenizer,
            Source = contents.Source,
        };
        StateDict.Load(model, contents.Tensors, contents.Source, mayBeUnused: name => name == "lm_head.weight");
        model.eval();
        return model;
    }

    void InitialiseScore(long seed)
    {
        var generator = new Generator((ulong)seed);
        using (no_grad())
            score.weight!.copy_(randn(score.weight!.shape, generator: generator).DividedBy(Math.Sqrt(Config.HiddenSize)));
    }

    /// <summary>Rewards from hidden states [..., hidden] → [...]: the decoding hot path scores cached hidden states with this.</summary>
    public Tensor ScoreFromHidden(Tensor hidden)
    {
        using var scope = NewDisposeScope(); // score.forward's output is an intermediate of the squeeze: see TransformerBackbone.ForwardInScope
        return scope.MoveToOuter(CpuLinear.TryForward(hidden, score.weight!, squeezeOutput: true) ?? score.forward(hidden).squeeze(-1));
    }

    /// <summary>
    /// The reward of every prefix of a right-padded batch, in one causal forward: ids and valid [B, T] → [B, T],
    /// where [b, t] is the reward of tokens 0..t of row b. Entries at padding are meaningless.
    /// </summary>
    public Tensor PrefixRewards(Tensor ids, Tensor valid)
    {
        using var scope = NewDisposeScope(); // see TransformerBackbone.ForwardInScope
        var hidden = Backbone.ForwardPadded(ids, valid);
        return scope.MoveToOuter(ScoreFromHidden(hidden));
    }

    /// <summary>
    /// The reward of each whole row [B] (right padding): the prefix reward at the row's last real token, or, when
    /// <see cref="Readout"/> skips padding, at its last real token that is not the pad id (position 0 when every
    /// token is padding — transformers' argmax over an all-zero mask).
    /// </summary>
    public Tensor SequenceRewards(Tensor ids, Tensor valid)
    {
        using var scope = NewDisposeScope();
        var read = valid.to(ScalarType.Bool);
        if (SkippedPadId is int pad)
        {
            using var padScalar = pad.ToScalar(); // held across ne: an implicit Scalar can be freed mid-call (Models/HeldScalars)
            read = read.logical_and(ids.ne(padScalar));
        }
        var positions = HeldScalars.Arange(ids.shape[1], ScalarType.Int64, ids.device).unsqueeze(0);
        var last = (positions * read.to(ScalarType.Int64)).argmax(1, keepdim: true);
        return scope.MoveToOuter(PrefixRewards(ids, valid).gather(1, last).squeeze(1));
    }

    /// <summary>
    /// Writes a Hugging Face folder: config.json (…ForSequenceClassification, <c>num_labels: 1</c>, pad_token_id,
    /// and Pargs's <c>pargs_objective</c>), model.safetensors with <c>score.weight</c>, and the tokenizer when known.
    /// The folder is replaced atomically.
    /// </summary>
    public void Save(string dir, RewardObjective? objective = null, StoredType weightsType = StoredType.F32)
    {
        objective ??= Objective;
        var extra = new Dictionary<string, JsonNode?> { ["num_labels"] = 1 };
        if (objective is { } o) extra[ObjectiveField] = o.ToConfigValue();
        // HF's ...ForSequenceClassification needs pad_token_id to find each row's last token in a padded batch.
        var config = Config.PadTokenId is null && Config.EosTokenId is { } eos ? Config with { PadTokenId = eos } : Config;
        StateDict.Use(StateDictForSaving(), weights => HuggingFaceFolder.Save(dir, config, Architecture, weights, Tokenizer, extra, weightsType: weightsType));
    }

    /// <summary>config.json field recording what the reward model was trained on (full or partial).</summary>
    public const string ObjectiveField = "pargs_objective";

    /// <summary>
    /// Loads a trained reward model (HF folder or any checkpoint <see cref="CheckpointLoader"/> reads) with its
    /// tokenizer; <paramref name="requireTokenizer"/> = false allows a weights-only folder (Tokenizer stays null).
    /// </summary>
    public static RewardModel Load(string path, string? tokenizerPath = null, bool requireTokenizer = true)
    {
        if (ReadObjective(path) is { } vocabularyHead && vocabularyHead.HasVocabularyHead())
            throw new PargsException($"{path}: a {vocabularyHead.ToConfigValue()} reward model (a causal LM whose head scores every token) has no scalar score head; it guides --method {(vocabularyHead == RewardObjective.Farma ? "farma or farma-g" : "genarm")} (load it with RewardModels.Load)");
        using var contents = CheckpointLoader.Load(path);
        return Completed(FromCheckpoint(contents), contents, path, tokenizerPath, requireTokenizer);
    }

    /// <summary>
    /// Loads a reward model for decoding only: a Llama-family checkpoint (safetensors F32/F16/BF16 folder, or a GGUF
    /// whose head is <c>cls.output.weight</c>) is memory-mapped and its backbone computed on as stored — as
    /// <see cref="CausalLM.LoadForInference"/> does for the LM — with the score head in float32. Anything else loads
    /// as <see cref="Load"/> does. WHY: the reward model is a second backbone beside the LM; a float32 copy of it
    /// cost 4 bytes per weight where its file has 2 or ~1. Not for training (there are no backbone parameters).
    /// </summary>
    public static RewardModel LoadForInference(string path, string? tokenizerPath = null, bool requireTokenizer = true)
    {
        if (ReadObjective(path) is { } vocabularyHead && vocabularyHead.HasVocabularyHead()) return Load(path, tokenizerPath, requireTokenizer); // words the refusal
        if (StoredCheckpoint.Open(path, rewardModel: true) is not { } opened) return Load(path, tokenizerPath, requireTokenizer);
        var (contents, weights) = opened;
        try
        {
            var model = Completed(FromStored(contents.Config, weights, contents.Source), contents, path, tokenizerPath, requireTokenizer);
            CausalLM.ReleaseLoadingGarbage(); // as the LM's load does
            return model;
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A decode-only reward model over <paramref name="weights"/> (Hugging Face names, stored precision; disposed with
    /// the model): a Llama-family config, every backbone tensor the family declares and <c>score.weight</c> [1, hidden].
    /// </summary>
    public static RewardModel FromStored(ModelConfig config, StoredTensors weights, string source)
    {
        if (!StoredCheckpoint.HasStoredKernel(config))
            throw new PargsException($"{source}: model_type \"{config.ModelType}\" has no stored-precision kernel; load it as float32");
        var head = weights.Matrix("score.weight");
        if (head.Rows != 1 || head.Cols != config.HiddenSize)
            throw new PargsException($"{source}: tensor \"score.weight\" has shape [{head.Rows}, {head.Cols}]; a reward model's head is [1, {config.HiddenSize}]");
        var model = new RewardModel(config, new LlamaStoredBackbone(config, weights), head.Dequantize()) { Source = source };
        model.eval();
        return model;
    }

    /// <summary>What every load sets after the weights: tokenizer, objective and the token a reward is read at.</summary>
    static RewardModel Completed(RewardModel model, CheckpointContents contents, string path, string? tokenizerPath, bool requireTokenizer)
    {
        model.Source = contents.Source;
        bool hasTokenizerFile = contents.Format == "hf-folder" && File.Exists(Path.Combine(contents.Source, HuggingFaceFolder.TokenizerFile));
        model.Tokenizer = contents.Tokenizer
            ?? (requireTokenizer || tokenizerPath != null || hasTokenizerFile ? TokenizerLoader.ForCheckpoint(contents, tokenizerPath) : null);
        model.Objective = ReadObjective(path);
        // A reward model Pargs did not train reads as transformers reads it (see Readout).
        model.Readout = model.Objective is null && model.Config.PadTokenId is not null ? RewardReadout.LastNonPadToken : RewardReadout.LastToken;
        return model;
    }

    /// <summary>The objective a saved reward model records (<c>pargs_objective</c> in config.json), or null when it records none.</summary>
    public static RewardObjective? ReadObjective(string path)
    {
        if (File.Exists(path) && Path.GetExtension(path).Equals(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            // A reward model converted by pargs convert carries it as metadata (empty: none recorded).
            string? recorded = GgufFile.Read(path).GetString(GgufConverter.RewardObjectiveKey);
            return string.IsNullOrEmpty(recorded) ? null : RewardObjectives.Parse(recorded, $"{path}: metadata \"{GgufConverter.RewardObjectiveKey}\"");
        }
        string dir = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        string configPath = Path.Combine(dir, HuggingFaceFolder.ConfigFile);
        if (!File.Exists(configPath)) return null;
        var json = Pargs.Json.CheckedJson.ReadFile(configPath).Object(); // wrong types name the file and field
        return json[ObjectiveField].StringOrNull() is { } value ? RewardObjectives.Parse(value, $"{configPath}: field \"{ObjectiveField}\"") : null;
    }

    /// <summary>Parameters by HF name (what a saved reward model holds).</summary>
    public Dictionary<string, Tensor> StateDictForSaving() => StateDict.Snapshot(this);
}

/// <summary>Which token of a sequence a reward model's score is read at (<see cref="RewardModel.Readout"/>).</summary>
public enum RewardReadout
{
    /// <summary>The last real token, whatever it is (Pargs's reward models: EOS positions are trained).</summary>
    LastToken,
    /// <summary>The last token that is not <c>pad_token_id</c>, as transformers' …ForSequenceClassification reads it.</summary>
    LastNonPadToken,
}
