using Pargs.Rewards;
using Pargs.Decoding;
using Pargs.Decoding.Methods;

namespace Pargs.Experiments;

/// <summary>
/// Everything <see cref="DemoPipeline"/> does, with defaults sized for ≤ 10 minutes on 2 CPU cores
/// (<see cref="Quick"/>: ≤ 2 minutes). Stage fingerprints are built from these values, so changing one reruns
/// the stages that depend on it and nothing else.
/// </summary>
public sealed record DemoOptions
{
    /// <summary>Work folder: every stage writes its artifacts and a manifest.json into a subfolder here.</summary>
    public string WorkDir { get; init; } = Path.Combine("runs", "demo");
    /// <summary>Master seed: the prompt split, pair sampling, label draws, RM initialisation and decoding derive from it.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>
    /// Threads for torch and Pargs' CPU kernels (<see cref="Models.Cpu.ComputeThreads"/>; null leaves the defaults).
    /// 1 is the default: stories260K is so small that a second thread only adds synchronisation, and on a busy
    /// 2-core machine it made decoding ~9× slower (measured).
    /// </summary>
    public int? Threads { get; init; } = 1;
    /// <summary>Base LM (null: the shipped stories260K, data/models/stories260K/…gguf).</summary>
    public string? BaseModelPath { get; init; }
    /// <summary>Story openings, one per line, # comments (null: data/prompts/story-openings.txt).</summary>
    public string? PromptsPath { get; init; }
    /// <summary>Use only the first this many prompts of the file (null: all).</summary>
    public int? MaxPrompts { get; init; }
    /// <summary>Share of prompts held out for generation and evaluation (never seen by reward training).</summary>
    public double EvalPromptFraction { get; init; } = 1.0 / 3;

    // ---- stage 2: gold-labelled preference pairs
    /// <summary>Pairs sampled per train prompt (each pair = two independent base-LM samples).</summary>
    public int PairsPerPrompt { get; init; } = 30;
    /// <summary>Share of the pairs kept aside to evaluate the reward models (pairs.eval.jsonl).</summary>
    public double EvalPairFraction { get; init; } = 0.2;
    /// <summary>k of the top-k sampling that produces the pair continuations.</summary>
    public int PairTopK { get; init; } = 40;
    public int PairMaxNewTokens { get; init; } = 40;
    /// <summary>Rows sampled together for the pairs (many short rows: batching is nearly free on CPU).</summary>
    public int PairBatchSize { get; init; } = 64;
    /// <summary>
    /// τ of the Bradley–Terry label draw: P(a preferred over b) = σ((g_a − g_b) / τ), with g the gold reward in
    /// (−1, 1). Small τ: nearly always the higher gold reward wins; large τ: noisy labels.
    /// </summary>
    public double LabelTemperature { get; init; } = 0.1;
    /// <summary>Drop pairs whose two gold rewards are equal (often both 0: no sentiment word) — their label would be a coin flip.</summary>
    public bool DropTiedPairs { get; init; } = true;

    // ---- stage 3: reward models (full and partial, same data, same budget)
    public int TrainEpochs { get; init; } = 4;
    /// <summary>Optimizer steps; overrides <see cref="TrainEpochs"/> when set.</summary>
    public int? TrainMaxSteps { get; init; }
    public int TrainBatchSize { get; init; } = 16;
    public double LearningRate { get; init; } = 1e-3;

    // ---- stage 3b: reward models with a vocabulary head (FaRMA's and GenARM's), same data and budget by default
    /// <summary>
    /// Budget of the FaRMA and GenARM reward models, in optimizer steps (null: the same as the full and partial ones,
    /// <see cref="Budget"/>) — a knob to keep the demo's time down; the default keeps the comparison like for like.
    /// </summary>
    public int? VocabularyRewardModelMaxSteps { get; init; }

    // ---- stage 4: DPO, the paper's offline baseline (same pairs and budget as the reward models)
    /// <summary>Train a DPO policy from the base LM and add its top-k samples as the "dpo" row.</summary>
    public bool Dpo { get; init; } = true;
    /// <summary>DPO's β (TRL's default): the strength of the implicit KL penalty to the base LM.</summary>
    public double DpoBeta { get; init; } = 0.1;

    // ---- stage 4b: PPO, the paper's other offline baseline (the full reward model, DPO's budget in optimizer steps)
    /// <summary>Train a PPO policy from the base LM against the full reward model and add its top-k samples as the "ppo" row.</summary>
    public bool Ppo { get; init; } = true;
    /// <summary>PPO's kl_coef (TRL's default): β of the per-token reward −β·KL(policy ‖ base LM).</summary>
    public double PpoKlCoef { get; init; } = 0.05;

    // ---- stage 5: guided generation on the held-out prompts
    public IReadOnlyList<DecodingMethod> Methods { get; init; } =
    [
        DecodingMethods.TopK, DecodingMethods.BestOfN, DecodingMethods.Args, DecodingMethods.Pargs, DecodingMethods.PargsGreedy,
        DecodingMethods.Farma, DecodingMethods.FarmaGreedy, DecodingMethods.GenArm, DecodingMethods.ControlledDecoding, DecodingMethods.Cards,
    ];
    /// <summary>Candidates per step (and N of Best-of-N, as in the paper).</summary>
    public int K { get; init; } = 10;
    /// <summary>Guidance weights swept for ARGS, PARGS and PARGS-G.</summary>
    public IReadOnlyList<double> Weights { get; init; } = [0.5, 1, 2, 4];
    /// <summary>Decoding seeds: sampling methods run once per seed; deterministic ones (ARGS, PARGS-G) once.</summary>
    public int GenerationSeeds { get; init; } = 4;
    public int MaxNewTokens { get; init; } = 40;
    public int BatchSize { get; init; } = 32;
    /// <summary>M of blockwise controlled decoding (K = <see cref="K"/>): 8 tokens, five blocks of a 40-token continuation.</summary>
    public int BlockLength { get; init; } = ControlledDecodingOptions.DefaultBlockLength;
    /// <summary>CARDS's r*: this quantile of the partial reward model's rewards on the train pairs (<see cref="CardsTarget"/>).</summary>
    public double CardsTargetQuantile { get; init; } = CardsTarget.DefaultQuantile;

    // ---- stage 6
    /// <summary>The method every row is compared with (win/tie/loss).</summary>
    public string Baseline { get; init; } = "topk";

    /// <summary>The ≤ 2-minute preset: fewer prompts, pairs, steps, weights and seeds.</summary>
    public DemoOptions Quick() => this with
    {
        MaxPrompts = 45,
        PairsPerPrompt = 12,
        TrainEpochs = 2,
        Weights = [1, 4],
        GenerationSeeds = 2,
        MaxNewTokens = 32,
        PairMaxNewTokens = 32,
    };

    /// <summary>The scalar-head reward models the methods need (full, partial), in that order.</summary>
    public IReadOnlyList<Rewards.RewardObjective> ScalarObjectives => ObjectivesNeeded(vocabulary: false);
    /// <summary>The vocabulary-head reward models the methods need (farma, genarm), in that order.</summary>
    public IReadOnlyList<Rewards.RewardObjective> VocabularyObjectives => ObjectivesNeeded(vocabulary: true);
    public bool NeedsRewardModels => Ppo || ScalarObjectives.Count > 0;

    IReadOnlyList<Rewards.RewardObjective> ObjectivesNeeded(bool vocabulary)
    {
        var needed = Methods.Where(m => m.GuideObjective is { } o && o.HasVocabularyHead() == vocabulary).Select(m => m.GuideObjective!.Value).ToHashSet();
        // The scalar pair is trained together (the prefix-accuracy comparison is full against partial).
        if (!vocabulary && needed.Count > 0) return [Rewards.RewardObjective.Full, Rewards.RewardObjective.Partial];
        return Enum.GetValues<Rewards.RewardObjective>().Where(needed.Contains).ToList();
    }

    /// <summary>The stages this configuration runs, in order.</summary>
    public IReadOnlyList<string> Stages => DemoPipeline.StageNames
        .Where(s => (s != "reward-models" || NeedsRewardModels) && (s != DemoPipeline.VocabularyRewardModelsStage || VocabularyObjectives.Count > 0) && (s != "dpo" || Dpo) && (s != "ppo" || Ppo)).ToList();

    /// <summary>The reward models' and the DPO policy's shared budget (seed: Seed + 2).</summary>
    public TrainingBudget Budget => new(TrainEpochs, TrainMaxSteps, TrainBatchSize, LearningRate, Seed + 2, Threads);

    /// <summary>The FaRMA and GenARM reward models' budget: <see cref="Budget"/>, or its steps capped by <see cref="VocabularyRewardModelMaxSteps"/>.</summary>
    public TrainingBudget VocabularyBudget => VocabularyRewardModelMaxSteps is { } steps ? Budget with { MaxSteps = steps } : Budget;

    /// <summary>The sweep; <paramref name="cardsTarget"/> is r*, known once the partial reward model is trained.</summary>
    public SweepSettings SweepWith(double? cardsTarget) => new(Methods, K, Weights, GenerationSeeds, MaxNewTokens, BatchSize, Dpo, BlockLength, cardsTarget, Ppo);

    public DemoOptions Validate()
    {
        void Require(bool ok, string what) { if (!ok) throw new PargsException($"demo options: {what}"); }
        Require(EvalPromptFraction > 0 && EvalPromptFraction < 1, $"eval prompt fraction must be in (0, 1), got {EvalPromptFraction}");
        Require(EvalPairFraction > 0 && EvalPairFraction < 1, $"eval pair fraction must be in (0, 1), got {EvalPairFraction}");
        Require(MaxPrompts is null or >= 2, $"--max-prompts must be at least 2 (one train, one eval), got {MaxPrompts}");
        Require(PairsPerPrompt > 0, $"pairs per prompt must be at least 1, got {PairsPerPrompt}");
        Require(LabelTemperature > 0 && double.IsFinite(LabelTemperature), $"label temperature τ must be positive, got {LabelTemperature}");
        Require(PairTopK > 0 && K > 0, "k must be at least 1");
        Require(PairMaxNewTokens > 0 && MaxNewTokens > 0, "max new tokens must be at least 1");
        Require(TrainEpochs > 0 && (TrainMaxSteps is null or > 0) && TrainBatchSize > 0 && LearningRate > 0, "training budget must be positive");
        Require(Methods.Count > 0 || Dpo || Ppo, "at least one method is needed");
        Require(PpoKlCoef >= 0 && double.IsFinite(PpoKlCoef), $"PPO kl_coef must be a non-negative number, got {PpoKlCoef}");
        Require(DpoBeta > 0 && double.IsFinite(DpoBeta), $"DPO β must be positive, got {DpoBeta}");
        Require(Weights.Count > 0 && Weights.All(double.IsFinite), "at least one finite guidance weight is needed");
        Require(GenerationSeeds > 0, $"generation seeds must be at least 1, got {GenerationSeeds}");
        Require(Threads is null or > 0, $"threads must be positive, got {Threads}");
        Require(BlockLength > 0, $"the block length M of controlled decoding must be at least 1, got {BlockLength}");
        Require(CardsTargetQuantile > 0 && CardsTargetQuantile < 1, $"the CARDS target quantile must be in (0, 1), got {CardsTargetQuantile}");
        Require(VocabularyRewardModelMaxSteps is null or > 0, $"the FaRMA/GenARM reward models' steps must be positive, got {VocabularyRewardModelMaxSteps}");
        return this;
    }
}
