using System.Text.Json;
using Pargs.Data;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Rewards;

namespace Pargs.Experiments;

/// <summary>
/// A `pargs experiment` run, read from a JSON config (comments and trailing commas allowed). Every section is
/// optional; what a section needs is checked here, and each error names the config field:
/// <code>
/// {
///   "model": "data/models/stories260K/tinyllamas-stories-260k-f32.gguf",   // base LM (default: shipped stories260K)
///   "tokenizer": null, "work": "runs/my-experiment", "seed": 1, "threads": 1,
///   "data": { "train": "pairs.jsonl.gz", "eval": null, "eval_fraction": 0.2, "format": "auto", "template": "hh",
///             "max_length": 256, "limit": 600, "eval_limit": null, "skip_bad_rows": false },
///   "reward_models": { "objectives": ["full", "partial", "farma", "genarm"], "epochs": 1, "max_steps": null, "batch_size": 16, "lr": 1e-3 },
///               // or, instead of training: { "use": { "partial": "DIR", "full": "DIR", "farma": "DIR" } }   (reward-model folders)
///   "dpo": { "beta": 0.1, "epochs": …, "max_steps": …, "batch_size": …, "lr": … },   // budget defaults: reward_models'
///   "ppo": { "kl_coef": 0.05, "kl_estimator": "k1", "gamma": 1.0, "lam": 0.95, "cliprange": 0.2, "cliprange_value": 0.2,
///            "vf_coef": 0.1, "num_ppo_epochs": 4, "num_mini_batches": 1, "response_length": null,   // null: generate.max_new_tokens (else 40)
///            "temperature": 1.0, "whiten_rewards": false, "missing_eos_penalty": null,
///            "epochs": …, "max_steps": …, "batch_size": …, "lr": … },   // TRL's PPOConfig names; budget as "dpo"'s, in optimizer steps
///   "generate": { "prompts": "prompts.txt" | "from_eval_data": 20, "methods": ["topk", "pargs", "dpo", "ppo"], "k": 10,
///                 "w": [1, 2], "max_new_tokens": 40, "seeds": 2, "batch_size": 16,
///                 "block_length": 8,            // M of blockwise CD (K = k)
///                 "target_reward": 1.5 },       // r* of CARDS (default: the 90th percentile of the partial RM's rewards on the train pairs)
///   "evaluate": { "reward": "vader-positive" | { "reward_model": "DIR" }, "baseline": "topk" }
/// }
/// </code>
/// Relative paths are looked up beside the config file, then in the current folder, then among Pargs's shipped data.
/// </summary>
public sealed record ExperimentConfig
{
    public string ConfigPath { get; init; } = "(in memory)";
    public string ModelPath { get; init; } = "";
    public string? TokenizerPath { get; init; }
    public string WorkDir { get; init; } = Path.Combine("runs", "experiment");
    public int Seed { get; init; } = 1;
    public int? Threads { get; init; } = 1;
    public DataSection? Data { get; init; }
    public RewardModelsSection? RewardModels { get; init; }
    public DpoSection? Dpo { get; init; }
    public PpoSection? Ppo { get; init; }
    public GenerateSection? Generate { get; init; }
    public EvaluateSection? Evaluate { get; init; }

    public sealed record DataSection(string Train, string? Eval, double EvalFraction, PreferenceFormat Format, PromptTemplate Template,
        int MaxLength, int? Limit, int? EvalLimit, bool SkipBadRows);
    public sealed record Budget(int Epochs, int? MaxSteps, int BatchSize, double LearningRate);
    /// <summary>
    /// The reward models: trained in the run's reward-models stage on <see cref="Data"/> with <paramref name="Budget"/>,
    /// or, with <paramref name="Use"/>, existing folders (e.g. from <c>pargs train-rm</c>) and no training.
    /// </summary>
    public sealed record RewardModelsSection(IReadOnlyList<RewardObjective> Objectives, Budget? Budget,
        IReadOnlyDictionary<RewardObjective, string>? Use = null);
    public sealed record DpoSection(double Beta, Budget Budget);
    /// <summary>
    /// The PPO baseline (<see cref="PpoStage"/>): TRL's PPO settings in <paramref name="Options"/> (its Loop is the
    /// stage's, from <paramref name="Budget"/>), trained against the run's full reward model on the train pairs' prompts.
    /// <paramref name="ResponseLength"/> null: generate.max_new_tokens (40 without a "generate" section).
    /// </summary>
    public sealed record PpoSection(Training.PpoTrainingOptions Options, int? ResponseLength, Budget Budget);
    public sealed record GenerateSection(string? PromptsFile, int? FromEvalData, IReadOnlyList<DecodingMethod> Methods, bool Dpo,
        int K, IReadOnlyList<double> Weights, int MaxNewTokens, int Seeds, int BatchSize,
        int BlockLength = ControlledDecodingOptions.DefaultBlockLength, double? TargetReward = null, bool Ppo = false);
    /// <param name="Reward">"vader-positive" / "vader-negative", or null when <paramref name="RewardModel"/> judges.</param>
    public sealed record EvaluateSection(string? Reward, string? RewardModel, string Baseline);

    public static ExperimentConfig Load(string path)
    {
        if (!File.Exists(path)) throw new PargsException($"{path}: config file not found");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e) { throw new PargsException($"{path}: invalid JSON at line {e.LineNumber + 1} (expected one JSON object): {e.Message}"); }
        using (document) return Parse(document.RootElement, path);
    }

    public static ExperimentConfig Parse(JsonElement root, string path)
    {
        var r = new Reader(path, Path.GetDirectoryName(Path.GetFullPath(path))!);
        r.Object(root, "");
        r.Known(root, "", "model", "tokenizer", "work", "seed", "threads", "data", "reward_models", "dpo", "ppo", "generate", "evaluate");
        int seed = r.Int(root, "seed") ?? 1;
        var config = new ExperimentConfig
        {
            ConfigPath = path,
            ModelPath = r.Path(root, "model") ?? ShippedData.Find(ShippedData.DefaultModel),
            TokenizerPath = r.Path(root, "tokenizer"),
            WorkDir = r.String(root, "work") ?? Path.Combine("runs", Path.GetFileNameWithoutExtension(path)),
            Seed = seed,
            Threads = r.Int(root, "threads", min: 1) ?? 1,
        };

        if (r.Section(root, "data") is { } d) config = WithData(r, d, config);
        if (r.Section(root, "reward_models") is { } rm) config = WithRewardModels(r, rm, config);
        if (r.Section(root, "dpo") is { } dpo) config = WithDpo(r, dpo, config);
        if (r.Section(root, "ppo") is { } ppo) config = WithPpo(r, ppo, config);
        if (r.Section(root, "generate") is { } g) config = WithGenerate(r, g, config);
        if (r.Section(root, "evaluate") is { } e) config = WithEvaluate(r, e, config);
        bool trainsRewardModels = config.RewardModels is { Use: null };
        if ((trainsRewardModels || config.Dpo is not null || config.Ppo is not null) && config.Data is null)
            throw r.Error(trainsRewardModels ? "reward_models" : config.Dpo is not null ? "dpo" : "ppo", "needs a \"data\" section (the preference pairs to train on)");
        return config;
    }

    /// <summary>The "data" section: the preference data to train on.</summary>
    static ExperimentConfig WithData(Reader r, JsonElement d, ExperimentConfig config)
    {
        r.Known(d, "data", "train", "eval", "eval_fraction", "format", "template", "max_length", "limit", "eval_limit", "skip_bad_rows");
        string? eval = r.Path(d, "eval", "data.");
        double fraction = r.Double(d, "eval_fraction", "data.") ?? 0.2;
        if (eval is null && !(fraction > 0 && fraction < 1)) throw r.Error("data.eval_fraction", $"must be in (0, 1) when data.eval is not given, got {fraction}");
        string format = r.String(d, "format", "data.") ?? "auto";
        config = config with
        {
            Data = new DataSection(
                r.Path(d, "train", "data.") ?? throw r.Error("data.train", "is required (a preference JSONL / .jsonl.gz file)"),
                eval, fraction,
                Enum.TryParse<PreferenceFormat>(format.Replace("_", "").Replace("-", ""), ignoreCase: true, out var f) ? f
                    : throw r.Error("data.format", $"\"{format}\" is not known (expected auto, explicit, implicitprompt, conversational, implicitconversational or tldr)"),
                Template(r, d),
                r.Int(d, "max_length", "data.", min: 2) ?? 256,
                r.Int(d, "limit", "data.", min: 2), r.Int(d, "eval_limit", "data.", min: 1),
                r.Bool(d, "skip_bad_rows", "data.") ?? false),
        };
        return config;
    }

    /// <summary>The "reward_models" section: reward models to train, or existing ones to use.</summary>
    static ExperimentConfig WithRewardModels(Reader r, JsonElement rm, ExperimentConfig config)
    {
        r.Known(rm, "reward_models", "objectives", "epochs", "max_steps", "batch_size", "lr", "use");
        config = config with { RewardModels = r.Section(rm, "use", "reward_models.") is { } use ? ExistingRewardModels(r, rm, use) : TrainedRewardModels(r, rm) };
        return config;
    }

    /// <summary>The "dpo" section: the DPO baseline policy.</summary>
    static ExperimentConfig WithDpo(Reader r, JsonElement dpo, ExperimentConfig config)
    {
        r.Known(dpo, "dpo", "beta", "epochs", "max_steps", "batch_size", "lr");
        double beta = r.Double(dpo, "beta", "dpo.") ?? 0.1;
        if (!(beta > 0) || !double.IsFinite(beta)) throw r.Error("dpo.beta", $"must be positive, got {beta}");
        config = config with { Dpo = new DpoSection(beta, ReadBudget(r, dpo, "dpo.", config.RewardModels?.Budget)) };
        return config;
    }

    /// <summary>
    /// The "ppo" section: the PPO baseline policy, with TRL's PPOConfig names. Rollouts sample at temperature 1 by
    /// default (TRL's 0.7): the "ppo" row samples at T = 1, and the policy is trained for the distribution it is read
    /// at, as the demo's is.
    /// </summary>
    static ExperimentConfig WithPpo(Reader r, JsonElement ppo, ExperimentConfig config)
    {
        r.Known(ppo, "ppo", "kl_coef", "kl_estimator", "gamma", "lam", "cliprange", "cliprange_value", "vf_coef", "num_ppo_epochs",
            "num_mini_batches", "response_length", "temperature", "whiten_rewards", "missing_eos_penalty", "epochs", "max_steps", "batch_size", "lr");
        const string p = "ppo.";
        var defaults = new Training.PpoTrainingOptions();
        double Checked(string name, double fallback, Func<double, bool> ok, string what)
        {
            double value = r.Double(ppo, name, p) ?? fallback;
            return ok(value) && double.IsFinite(value) ? value : throw r.Error(p + name, $"must be {what}, got {value}");
        }
        string estimator = (r.String(ppo, "kl_estimator", p) ?? "k1").Trim().ToLowerInvariant();
        double? penalty = r.Double(ppo, "missing_eos_penalty", p);
        if (penalty is { } pen && !(pen > 0 && double.IsFinite(pen))) throw r.Error(p + "missing_eos_penalty", $"must be a positive number, got {pen}");
        var options = defaults with
        {
            KlCoef = Checked("kl_coef", defaults.KlCoef, x => x >= 0, "a non-negative number"),
            KlEstimator = estimator switch
            {
                "k1" => Training.PpoKlEstimator.K1,
                "k3" => Training.PpoKlEstimator.K3,
                _ => throw r.Error(p + "kl_estimator", $"\"{estimator}\" is not known (expected \"k1\" or \"k3\")"),
            },
            Gamma = Checked("gamma", defaults.Gamma, x => x is >= 0 and <= 1, "in [0, 1]"),
            Lambda = Checked("lam", defaults.Lambda, x => x is >= 0 and <= 1, "in [0, 1]"),
            ClipRange = Checked("cliprange", defaults.ClipRange, x => x is > 0 and < 1, "in (0, 1)"),
            ClipRangeValue = Checked("cliprange_value", defaults.ClipRangeValue, x => x > 0, "a positive number"),
            ValueCoef = Checked("vf_coef", defaults.ValueCoef, x => x >= 0, "a non-negative number"),
            PpoEpochs = r.Int(ppo, "num_ppo_epochs", p, min: 1) ?? defaults.PpoEpochs,
            MiniBatches = r.Int(ppo, "num_mini_batches", p, min: 1) ?? defaults.MiniBatches,
            Temperature = Checked("temperature", 1.0, x => x > 0, "a positive number"),
            WhitenRewards = r.Bool(ppo, "whiten_rewards", p) ?? false,
            MissingEosPenalty = penalty,
        };
        var budget = ReadBudget(r, ppo, p, config.RewardModels?.Budget);
        if (budget.BatchSize % options.MiniBatches != 0)
            throw r.Error(p + "num_mini_batches", $"is {options.MiniBatches}, which does not divide the rollout batch (ppo.batch_size = {budget.BatchSize})");
        // PPO's reward is the full-sequence reward model's score of prompt + response, as TRL's reward_model.
        if (config.RewardModels?.Objectives.Contains(RewardObjective.Full) != true)
            throw r.Error("ppo", "needs a full reward model to train against: add \"full\" to reward_models.objectives (or a folder as reward_models.use.full)");
        config = config with { Ppo = new PpoSection(options, r.Int(ppo, "response_length", p, min: 1), budget) };
        return config;
    }

    /// <summary>The "generate" section: what to decode: methods, k, w, seeds, prompts.</summary>
    static ExperimentConfig WithGenerate(Reader r, JsonElement g, ExperimentConfig config)
    {
        r.Known(g, "generate", "prompts", "from_eval_data", "methods", "k", "w", "max_new_tokens", "seeds", "batch_size", "block_length", "target_reward");
        var names = r.Strings(g, "methods", "generate.") ?? ["topk"];
        if (names.GroupBy(n => n.Trim().ToLowerInvariant()).FirstOrDefault(group => group.Count() > 1) is { } twice)
            throw r.Error("generate.methods", $"lists \"{twice.Key}\" twice (each method runs once per w and seed)");
        bool Named(string n, string policyRow) => n.Trim().Equals(policyRow, StringComparison.OrdinalIgnoreCase);
        bool wantsDpo = names.Any(n => Named(n, GenerationSweep.DpoMethod)), wantsPpo = names.Any(n => Named(n, GenerationSweep.PpoMethod));
        var methods = new List<DecodingMethod>();
        foreach (var n in names.Where(n => !Named(n, GenerationSweep.DpoMethod) && !Named(n, GenerationSweep.PpoMethod)))
            try { methods.Add(DecodingMethods.Parse(n)); }
            catch (PargsException ex) { throw r.Error("generate.methods", ex.Message + ", dpo or ppo"); }
        if (methods.Count == 0 && !wantsDpo && !wantsPpo) throw r.Error("generate.methods", "is empty");
        var weights = r.Doubles(g, "w", "generate.") ?? [1.0];
        if (weights.Count == 0 || !weights.All(double.IsFinite)) throw r.Error("generate.w", "expected a non-empty list of finite numbers");
        if (weights.GroupBy(w => w).FirstOrDefault(group => group.Count() > 1) is { } repeated)
            throw r.Error("generate.w", $"lists {repeated.Key} twice (each w runs once per method and seed)");
        var section = new GenerateSection(r.Path(g, "prompts", "generate."), r.Int(g, "from_eval_data", "generate.", min: 1), methods, wantsDpo,
            r.Int(g, "k", "generate.", min: 1) ?? 10, weights, r.Int(g, "max_new_tokens", "generate.", min: 1) ?? 40,
            r.Int(g, "seeds", "generate.", min: 1) ?? 1, r.Int(g, "batch_size", "generate.", min: 1) ?? 16,
            r.Int(g, "block_length", "generate.", min: 1) ?? ControlledDecodingOptions.DefaultBlockLength, r.Double(g, "target_reward", "generate."), wantsPpo);
        if (section.TargetReward is { } target && !double.IsFinite(target)) throw r.Error("generate.target_reward", $"must be a finite number, got {target}");
        // r* by default comes from the trained partial reward model's rewards on the train pairs: without those, it must be given.
        if (methods.Contains(DecodingMethods.Cards) && section.TargetReward is null && (config.Data is null || config.RewardModels?.Use is not null))
            throw r.Error("generate.target_reward", "is required for cards when the run trains no partial reward model on its own data (r* is a point on the reward model's scale)");
        if (section.PromptsFile is { } promptsPath && Directory.Exists(promptsPath))
            throw r.Error("generate.prompts", $"\"{promptsPath}\" is a folder; expected a prompt file (one prompt per line, or JSONL)");
        if ((section.PromptsFile is null) == (section.FromEvalData is null))
            throw r.Error("generate.prompts", "give exactly one of generate.prompts (a file, one prompt per line) and generate.from_eval_data (a number of held-out prompts)");
        if (section.FromEvalData is not null && config.Data is null) throw r.Error("generate.from_eval_data", "needs a \"data\" section");
        if (methods.Any(m => m.NeedsRewardModel))
        {
            var have = config.RewardModels?.Objectives ?? [];
            foreach (var m in methods.Where(m => m.NeedsRewardModel))
            {
                var needed = m.GuideObjective ?? RewardObjective.Full;
                if (!have.Contains(needed))
                    throw r.Error("generate.methods", $"{m.Name} needs a {needed.ToConfigValue()} reward model: add \"{needed.ToConfigValue()}\" to reward_models.objectives (or a folder as reward_models.use.{needed.ToConfigValue()})");
            }
        }
        if (wantsDpo && config.Dpo is null) throw r.Error("generate.methods", "dpo needs a \"dpo\" section (the policy to sample from)");
        if (wantsPpo && config.Ppo is null) throw r.Error("generate.methods", "ppo needs a \"ppo\" section (the policy to sample from)");
        config = config with { Generate = section };
        return config;
    }

    /// <summary>The "evaluate" section: the held-out reward and the baseline.</summary>
    static ExperimentConfig WithEvaluate(Reader r, JsonElement e, ExperimentConfig config)
    {
        r.Known(e, "evaluate", "reward", "baseline");
        if (config.Generate is null) throw r.Error("evaluate", "needs a \"generate\" section (there is nothing to evaluate)");
        string? reward = null, judge = null;
        if (e.TryGetProperty("reward", out var rv) && rv.ValueKind == JsonValueKind.Object)
        {
            r.Known(rv, "evaluate.reward", "reward_model");
            judge = r.Path(rv, "reward_model", "evaluate.reward.") ?? throw r.Error("evaluate.reward.reward_model", "is required (a reward-model folder)");
        }
        else
        {
            reward = (r.String(e, "reward", "evaluate.") ?? "vader-positive").Trim().ToLowerInvariant();
            if (reward is not ("vader-positive" or "vader-negative"))
                throw r.Error("evaluate.reward", $"\"{reward}\" is not known (expected \"vader-positive\", \"vader-negative\" or {{\"reward_model\": DIR}})");
        }
        // The default compares with top-k when it was generated; a baseline named outright must have been.
        string? baseline = r.String(e, "baseline", "evaluate.");
        var generated = config.Generate.Methods.Select(m => m.Name).Concat(config.Generate.Dpo ? [GenerationSweep.DpoMethod] : [])
            .Concat(config.Generate.Ppo ? [GenerationSweep.PpoMethod] : []).ToList();
        if (baseline is not null && baseline != "none" && !generated.Contains(baseline))
            throw r.Error("evaluate.baseline", $"\"{baseline}\" is not among the generated methods ({string.Join(", ", generated)}); expected one of them or \"none\"");
        // A guided method runs once per w: as a baseline it would be several runs pooled into one.
        if (baseline is not null && config.Generate.Weights.Count > 1 && config.Generate.Methods.Any(m => m.Name == baseline && m.IsTokenwiseGuided))
            throw r.Error("evaluate.baseline", $"\"{baseline}\" runs at every w in generate.w ({string.Join(", ", config.Generate.Weights)}); a baseline must be one run (e.g. topk, best-of-n, dpo or ppo)");
        config = config with { Evaluate = new EvaluateSection(reward, judge, baseline ?? "topk") };
        return config;
    }

    /// <summary>reward_models with objectives and a training budget: trained in the run's reward-models stage.</summary>
    static RewardModelsSection TrainedRewardModels(Reader r, JsonElement rm)
    {
        var names = r.Strings(rm, "objectives", "reward_models.") ?? ["full", "partial"];
        var objectives = new List<RewardObjective>();
        foreach (var name in names)
            objectives.Add(name.Trim().ToLowerInvariant() switch
            {
                "full" => RewardObjective.Full,
                "partial" => RewardObjective.Partial,
                "farma" => RewardObjective.Farma,
                "genarm" => RewardObjective.Genarm,
                _ => throw r.Error("reward_models.objectives", $"\"{name}\" is not known (expected some of \"full\", \"partial\", \"farma\", \"genarm\")"),
            });
        objectives = objectives.Distinct().ToList();
        if (objectives.Count == 0) throw r.Error("reward_models.objectives", "is empty (expected some of \"full\", \"partial\", \"farma\", \"genarm\")");
        return new RewardModelsSection(objectives, ReadBudget(r, rm, "reward_models.", null));
    }

    /// <summary>reward_models.use: existing reward-model folders, by objective; nothing is trained.</summary>
    static RewardModelsSection ExistingRewardModels(Reader r, JsonElement rm, JsonElement use)
    {
        if (rm.EnumerateObject().Select(p => p.Name).FirstOrDefault(n => n != "use") is { } other)
            throw r.Error($"reward_models.{other}", "cannot be combined with reward_models.use (existing reward models are not trained again)");
        r.Known(use, "reward_models.use", "full", "partial", "farma", "genarm");
        var folders = new Dictionary<RewardObjective, string>();
        foreach (var objective in Enum.GetValues<RewardObjective>())
        {
            string field = objective.ToConfigValue();
            if (r.Path(use, field, "reward_models.use.") is not { } folder) continue;
            if (!File.Exists(Path.Combine(folder, "config.json")))
                throw r.Error($"reward_models.use.{field}", $"\"{folder}\" is not a reward-model folder (expected config.json + weights, as pargs train-rm writes)");
            // A reward model that records how it was trained must be used as that: PARGS scored by a full-response
            // model would be ARGS with sampling, under PARGS's name.
            if (RewardModel.ReadObjective(folder) is { } trained && trained != objective)
                throw r.Error($"reward_models.use.{field}", $"\"{folder}\" was trained as a {trained.ToConfigValue()} reward model (pargs_objective in its config.json)");
            folders[objective] = folder;
        }
        if (folders.Count == 0) throw r.Error("reward_models.use", "is empty (expected \"full\", \"partial\", \"farma\" or \"genarm\": a reward-model folder)");
        return new RewardModelsSection(folders.Keys.ToList(), null, folders);
    }

    static PromptTemplate Template(Reader r, JsonElement d)
    {
        string name = r.String(d, "template", "data.") ?? "plain";
        try { return PromptTemplate.FromName(name); }
        catch (PargsException) { throw r.Error("data.template", $"\"{name}\" is not known (expected one of {string.Join(", ", PromptTemplate.BuiltIn.Select(t => t.Name))})"); }
    }

    static Budget ReadBudget(Reader r, JsonElement e, string prefix, Budget? defaults)
    {
        double lr = r.Double(e, "lr", prefix) ?? defaults?.LearningRate ?? 1e-3;
        if (!(lr > 0) || !double.IsFinite(lr)) throw r.Error(prefix + "lr", $"must be positive, got {lr}");
        return new Budget(r.Int(e, "epochs", prefix, min: 1) ?? defaults?.Epochs ?? 1,
            e.TryGetProperty("max_steps", out _) ? r.Int(e, "max_steps", prefix, min: 1) : defaults?.MaxSteps,
            r.Int(e, "batch_size", prefix, min: 1) ?? defaults?.BatchSize ?? 16, lr);
    }

    /// <summary>Typed field access whose errors say "config: field 'x.y': …".</summary>
    sealed class Reader(string path, string configDir)
    {
        public PargsException Error(string field, string what) => new($"{path}: field '{field}' {what}");

        public void Object(JsonElement e, string field)
        {
            if (e.ValueKind != JsonValueKind.Object) throw Error(field.Length == 0 ? "(root)" : field, $"must be a JSON object, got {e.ValueKind}");
        }

        public void Known(JsonElement e, string section, params string[] names)
        {
            foreach (var p in e.EnumerateObject())
                if (!names.Contains(p.Name))
                    throw Error(section.Length == 0 ? p.Name : $"{section}.{p.Name}", $"is not known (expected one of {string.Join(", ", names)})");
        }

        public JsonElement? Section(JsonElement root, string name, string prefix = "")
        {
            if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
            Object(e, prefix + name);
            return e;
        }

        JsonElement? Get(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

        public string? String(JsonElement e, string name, string prefix = "")
            => Get(e, name) is not { } v ? null : v.ValueKind == JsonValueKind.String ? v.GetString() : throw Error(prefix + name, $"must be a string, got {v.ValueKind}");

        public int? Int(JsonElement e, string name, string prefix = "", int min = int.MinValue)
        {
            if (Get(e, name) is not { } v) return null;
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int x)) throw Error(prefix + name, $"must be an integer, got {v}");
            if (x < min) throw Error(prefix + name, $"must be at least {min}, got {x}");
            return x;
        }

        public double? Double(JsonElement e, string name, string prefix = "")
            => Get(e, name) is not { } v ? null : v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Error(prefix + name, $"must be a number, got {v}");

        public bool? Bool(JsonElement e, string name, string prefix = "")
            => Get(e, name) is not { } v ? null : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Error(prefix + name, $"must be true or false, got {v}");

        public List<string>? Strings(JsonElement e, string name, string prefix = "")
        {
            if (Get(e, name) is not { } v) return null;
            if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
                throw Error(prefix + name, "must be a list of strings");
            return v.EnumerateArray().Select(x => x.GetString()!).ToList();
        }

        public List<double>? Doubles(JsonElement e, string name, string prefix = "")
        {
            if (Get(e, name) is not { } v) return null;
            if (v.ValueKind == JsonValueKind.Number) return [v.GetDouble()];
            if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.Number))
                throw Error(prefix + name, "must be a number or a list of numbers");
            return v.EnumerateArray().Select(x => x.GetDouble()).ToList();
        }

        /// <summary>A path that must exist: beside the config, in the current folder, or in Pargs's shipped data.</summary>
        public string? Path(JsonElement e, string name, string prefix = "")
        {
            if (String(e, name, prefix) is not { } p) return null;
            if (System.IO.Path.IsPathRooted(p)) return Exists(p) ? p : throw Error(prefix + name, $"\"{p}\" does not exist");
            foreach (var candidate in new[] { System.IO.Path.Combine(configDir, p), System.IO.Path.GetFullPath(p) })
                if (Exists(candidate)) return candidate;
            try { return ShippedData.Find(p); }
            catch (PargsException) { throw Error(prefix + name, $"\"{p}\" was not found beside the config ({configDir}), in the current folder or in Pargs's shipped data"); }
        }

        static bool Exists(string p) => File.Exists(p) || Directory.Exists(p);
    }
}
