using System.Diagnostics;
using System.Globalization;
using System.Text;
using Pargs.Checkpoints;
using Pargs.Data;
using Pargs.Decoding;
using Pargs.Evaluation;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Rewards.Gold;
using Pargs.Tokenizers;
using TorchSharp;

namespace Pargs.Experiments;

/// <summary>What an experiment run produced: its stages, report.md and the total time.</summary>
public sealed record ExperimentResult(IReadOnlyList<DemoStageResult> Stages, string ReportPath, double Seconds);

/// <summary>
/// `pargs experiment`: the demo's pipeline on the user's LM, preference data and judge (<see cref="ExperimentConfig"/>),
/// with the demo's own stage functions and caching. Stages (each only when its section is in the config):
/// <c>data/</c> (read, filter by length, limit, seeded split → train.jsonl / eval.jsonl with rendered prompts),
/// <c>reward-models/</c> (<see cref="RewardModelStage"/>; skipped with reward_models.use), <c>dpo/</c> (<see cref="DpoStage"/>),
/// <c>ppo/</c> (<see cref="PpoStage"/>, against the run's full reward model on the train pairs' prompts),
/// <c>generate/</c> (<see cref="GenerationSweep"/>), <c>evaluate/</c> (<see cref="GenerationEvaluator"/>); then report.md.
/// Seeds: data split = seed, training (heads, data order) = seed + 2, decoding = seed + 100 + j.
/// </summary>
public sealed class ExperimentPipeline(ExperimentConfig c)
{
    public static readonly IReadOnlyList<string> StageNames = ["data", "reward-models", "dpo", "ppo", "generate", "evaluate"];
    public const string ReportFile = "report.md";

    public ExperimentResult Run(IProgress<DemoProgress>? progress = null, bool fresh = false, string? commandLine = null)
    {
        var stages = new StageRunner(c.WorkDir, progress, ReportFile);
        if (fresh) stages.Delete(StageNames, ReportFile);
        Directory.CreateDirectory(c.WorkDir);
        if (c.Threads is { } threads) Models.Cpu.ComputeThreads.Set(threads);
        var clock = Stopwatch.StartNew();
        var results = new List<DemoStageResult>();
        string model = Identity(c.ModelPath);
        string fp = StageManifest.FingerprintOf("", new { model, tokenizer = c.TokenizerPath is null ? null : Identity(c.TokenizerPath) });
        string? train = null, eval = null;
        if (c.Data is { } d)
        {
            fp = StageManifest.FingerprintOf(fp, new { train = Identity(d.Train), eval = d.Eval is null ? null : Identity(d.Eval), d.EvalFraction,
                format = d.Format.ToString(), template = d.Template.Name, d.MaxLength, d.Limit, d.EvalLimit, d.SkipBadRows, c.Seed });
            results.Add(stages.Run("data", fp, dir => DataStage(dir, d)));
            (train, eval) = (Path.Combine(stages.Dir("data"), "train.jsonl"), Path.Combine(stages.Dir("data"), "eval.jsonl"));
        }
        string fpData = fp, fpRm = "", fpDpo = "", fpPpo = "";
        if (c.RewardModels is { Use: { } existing })
            fpRm = StageManifest.FingerprintOf(fpData, existing.OrderBy(kv => kv.Key).Select(kv => new { objective = kv.Key.ToConfigValue(), folder = ContentHash(kv.Value) }));
        else if (c.RewardModels is { Budget: { } rmBudget } rms)
        {
            var budget = ToBudget(rmBudget);
            fpRm = StageManifest.FingerprintOf(fpData, new { objectives = rms.Objectives.Select(o => o.ToConfigValue()), budget });
            results.Add(stages.Run("reward-models", fpRm, dir => RewardModelStage.Run(dir, c.ModelPath, c.TokenizerPath, train!, eval!,
                c.Data!.MaxLength, rms.Objectives, budget, stages.For("reward-models"))));
        }
        if (c.Dpo is { } dpo)
        {
            var budget = ToBudget(dpo.Budget);
            fpDpo = StageManifest.FingerprintOf(fpData, new { dpo.Beta, budget });
            results.Add(stages.Run("dpo", fpDpo, dir => DpoStage.Run(dir, c.ModelPath, c.TokenizerPath, train!, eval, dpo.Beta, budget, stages.For("dpo"))));
        }
        if (c.Ppo is { } ppo)
        {
            var budget = ToBudget(ppo.Budget);
            int responseLength = PpoResponseLength(ppo);
            var o = ppo.Options;
            // The full reward model's fingerprint is in fpRm: PPO is retrained when the model it is trained against changes.
            fpPpo = StageManifest.FingerprintOf(fpData + fpRm, new
            {
                o.KlCoef, estimator = o.KlEstimator.ToString(), o.Gamma, o.Lambda, o.ClipRange, o.ClipRangeValue, o.ValueCoef, o.PpoEpochs,
                o.MiniBatches, o.Temperature, o.WhitenRewards, o.MissingEosPenalty, responseLength, budget,
            });
            results.Add(stages.Run("ppo", fpPpo, dir => PpoStageRun(dir, ppo, budget, responseLength, train!, stages)));
        }
        if (c.Generate is { } g)
        {
            string fpGen = StageManifest.FingerprintOf(fpData + fpRm + fpDpo + fpPpo, new
            {
                prompts = g.PromptsFile is null ? null : File.ReadAllText(g.PromptsFile), g.FromEvalData, template = c.Data?.Template.Name,
                methods = g.Methods.Select(m => m.Name), g.Dpo, g.Ppo, g.K, g.Weights, g.MaxNewTokens, g.Seeds, g.BlockLength, g.TargetReward,
            });
            results.Add(stages.Run("generate", fpGen, dir => GenerateStage(dir, g, stages)));
            if (c.Evaluate is { } e)
            {
                string fpEval = StageManifest.FingerprintOf(fpGen, new { e.Reward, judge = e.RewardModel is null ? null : Identity(e.RewardModel), e.Baseline });
                results.Add(stages.Run("evaluate", fpEval, dir => EvaluateStage(dir, e, stages)));
            }
        }
        string report = WriteReport(results, commandLine, clock.Elapsed.TotalSeconds);
        return new ExperimentResult(results, report, clock.Elapsed.TotalSeconds);
    }

    int PpoResponseLength(ExperimentConfig.PpoSection ppo) => ppo.ResponseLength ?? c.Generate?.MaxNewTokens ?? 40;

    /// <summary>The ppo stage: the run's full reward model (trained or given) and the distinct prompts of the train pairs.</summary>
    (IReadOnlyList<string>, Dictionary<string, double>) PpoStageRun(string dir, ExperimentConfig.PpoSection ppo, TrainingBudget budget,
        int responseLength, string trainPairsPath, StageRunner stages)
    {
        var pairs = PreferenceReader.Read(trainPairsPath).Pairs;
        var prompts = pairs.Select(p => p.Prompt).Distinct().ToList();
        var rm = LoadRewardModel(RewardObjective.Full, stages)
                 ?? throw new PargsException($"{c.ConfigPath}: field 'ppo' needs a full reward model, but the run has none");
        try
        {
            return PpoStage.Run(dir, c.ModelPath, c.TokenizerPath, prompts, rm, pairs.Count, ppo.Options with { ResponseLength = responseLength },
                budget, stages.For("ppo"));
        }
        finally { (rm as IDisposable)?.Dispose(); }
    }

    TrainingBudget ToBudget(ExperimentConfig.Budget b) => new(b.Epochs, b.MaxSteps, b.BatchSize, b.LearningRate, c.Seed + 2, c.Threads);

    /// <summary>A file or folder's name and size(s): enough to notice it changed, cheap to compute.</summary>
    static string Identity(string path) => Directory.Exists(path)
        ? Path.GetFileName(Path.TrimEndingDirectorySeparator(path)) + ":" + string.Join(",", Directory.GetFiles(path).Order().Select(f => new FileInfo(f).Length))
        : Path.GetFileName(path) + ":" + new FileInfo(path).Length;

    /// <summary>
    /// A hash of every file in a folder, names and contents. WHY not <see cref="Identity"/>: two reward models of one
    /// shape have files of equal sizes, and a folder retrained in place keeps its name; reusing generations
    /// decoded with another reward model would be silently wrong. Hashing reads the folder once per run.
    /// </summary>
    static string ContentHash(string folder)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var file in Directory.GetFiles(folder).Order(StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes(Path.GetFileName(file) + "\0"));
            using var stream = File.OpenRead(file);
            var buffer = new byte[1 << 20];
            for (int n; (n = stream.Read(buffer)) > 0;) sha.AppendData(buffer, 0, n);
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }

    (IReadOnlyList<string>, Dictionary<string, double>) DataStage(string dir, ExperimentConfig.DataSection d)
    {
        ITokenizer tokenizer;
        int maxLength;
        using (var contents = CheckpointLoader.Load(c.ModelPath))
        {
            tokenizer = TokenizerLoader.ForCheckpoint(contents, c.TokenizerPath);
            maxLength = Math.Min(d.MaxLength, contents.Config.MaxPositions);
        }
        var options = new PreferenceReadOptions
        {
            Format = d.Format, Template = d.Template, OnBadRow = d.SkipBadRows ? BadRowPolicy.Skip : BadRowPolicy.Fail,
            SkipSetting = $"\"skip_bad_rows\": true in the data section of {c.ConfigPath}",
        };
        var summary = new Dictionary<string, double>();
        List<PreferencePair> Fitting(string path, int? limit, string name)
        {
            var read = PreferenceReader.Read(path, options);
            // Keep the pairs whose prompt + longer response fits max_length (never truncated), then the first `limit` of them.
            var tokenizerFor = new PairTokenizer(tokenizer, new PairTokenizerOptions { MaxLength = maxLength, PartialPairs = new PartialPairOptions { Positions = new PrefixPositions.FinalOnly() } });
            var kept = new List<PreferencePair>();
            foreach (var pair in read.Pairs)
            {
                if (limit is { } l && kept.Count >= l) break;
                if (tokenizerFor.Tokenize([pair], path).Pairs.Count == 1) kept.Add(pair);
            }
            summary[$"{name}_rows_read"] = read.Report.RowsRead;
            summary[$"{name}_rows_skipped"] = read.Report.RowsSkipped;
            summary[$"{name}_pairs_kept"] = kept.Count;
            if (kept.Count == 0) throw new PargsException($"{path}: no pair fits data.max_length = {maxLength} tokens (prompt + response)");
            return kept;
        }
        IReadOnlyList<PreferencePair> train, eval;
        if (d.Eval is null)
        {
            var all = Fitting(d.Train, d.Limit, "train");
            (train, eval) = DataSplit.Split(all, d.EvalFraction, c.Seed);
        }
        else
        {
            train = Fitting(d.Train, d.Limit, "train");
            eval = Fitting(d.Eval, d.EvalLimit, "eval");
        }
        if (train.Count == 0 || eval.Count == 0)
            throw new PargsException($"{d.Train}: {train.Count} train and {eval.Count} eval pairs; expected at least one of each (raise data.limit or data.eval_fraction)");
        PairFiles.Write(Path.Combine(dir, "train.jsonl"), train);
        PairFiles.Write(Path.Combine(dir, "eval.jsonl"), eval);
        summary["train_pairs"] = train.Count;
        summary["eval_pairs"] = eval.Count;
        return (["train.jsonl", "eval.jsonl"], summary);
    }

    IReadOnlyList<string> Prompts(ExperimentConfig.GenerateSection g, StageRunner stages)
    {
        if (g.PromptsFile is { } file)
        {
            var template = c.Data?.Template ?? PromptTemplate.Plain;
            return StoryPrompts.Read(file).Select(p => template.RenderPrompt(p)).ToList();
        }
        var pairs = PreferenceReader.Read(Path.Combine(stages.Dir("data"), "eval.jsonl")).Pairs;
        return pairs.Select(p => p.Prompt).Distinct().Take(g.FromEvalData!.Value).ToList();
    }

    (IReadOnlyList<string>, Dictionary<string, double>) GenerateStage(string dir, ExperimentConfig.GenerateSection g, StageRunner stages)
    {
        var prompts = Prompts(g, stages);
        using var lm = CausalLM.Load(c.ModelPath, c.TokenizerPath);
        // What only the model can tell, said in the config's terms before any generation starts.
        if (g.K > lm.Config.VocabSize)
            throw new PargsException($"{c.ConfigPath}: field 'generate.k' is {g.K}, larger than the model's vocabulary ({lm.Config.VocabSize} tokens)");
        if (g.MaxNewTokens >= lm.Config.MaxPositions)
            throw new PargsException($"{c.ConfigPath}: field 'generate.max_new_tokens' is {g.MaxNewTokens}, but the model's context is {lm.Config.MaxPositions} tokens (prompt included)");
        var guides = new Dictionary<RewardObjective, IRewardModel>();
        try
        {
            foreach (var objective in Enum.GetValues<RewardObjective>())
                if (LoadRewardModel(objective, stages) is { } rm) guides[objective] = rm;
            return Generate(dir, g, stages, prompts, lm, guides);
        }
        finally
        {
            foreach (var rm in guides.Values) (rm as IDisposable)?.Dispose();
        }
    }

    (IReadOnlyList<string>, Dictionary<string, double>) Generate(string dir, ExperimentConfig.GenerateSection g, StageRunner stages,
        IReadOnlyList<string> prompts, CausalLM lm, IReadOnlyDictionary<RewardObjective, IRewardModel> guides)
    {
        using var policy = g.Dpo ? CausalLM.Load(Path.Combine(stages.Dir("dpo"), DpoStage.PolicyFolder)) : null;
        using var ppoPolicy = g.Ppo ? CausalLM.Load(Path.Combine(stages.Dir("ppo"), PpoStage.PolicyFolder)) : null;
        // CARDS's r*: given, or from the trained partial reward model and the run's train pairs (ExperimentConfig checks one exists).
        double? target = g.TargetReward;
        if (target is null && g.Methods.Contains(Decoding.Methods.DecodingMethods.Cards) && guides.TryGetValue(RewardObjective.Partial, out var partial))
            target = CardsTarget.FromPairs(partial, Path.Combine(stages.Dir("data"), "train.jsonl"), c.Data!.MaxLength);
        var runs = GenerationSweep.Plan(new SweepSettings(g.Methods, g.K, g.Weights, g.Seeds, g.MaxNewTokens, g.BatchSize, g.Dpo, g.BlockLength, target, g.Ppo), guides, policy, c.Seed + 100, ppoPolicy);
        var progress = stages.For("generate");
        var records = GenerationSweep.Execute(lm, runs, prompts, Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(c.ModelPath)),
            progress is null ? null : new InlineProgress<(int Done, int Total, string Run)>(p => progress.Report((p.Done, p.Total, p.Run))));
        GenerationJsonl.Write(Path.Combine(dir, "generations.jsonl"), records);
        var summary = new Dictionary<string, double>
        {
            ["prompts"] = prompts.Count, ["runs"] = runs.Count, ["generations"] = records.Count, ["tokens"] = records.Sum(r => r.Tokens),
            ["decode_seconds"] = records.Sum(r => r.Seconds ?? 0),
        };
        if (target is { } t && g.Methods.Contains(Decoding.Methods.DecodingMethods.Cards)) summary["cards_target_reward"] = Math.Round(t, 4);
        return (["generations.jsonl"], summary);
    }

    /// <summary>
    /// The run's reward model for <paramref name="objective"/>: an existing folder (reward_models.use, with its own
    /// tokenizer: a different one than the LM's is bridged by retokenizing), or the one the reward-models stage
    /// trained from the LM (tokenized like the LM); null when there is none.
    /// </summary>
    IRewardModel? LoadRewardModel(RewardObjective objective, StageRunner stages)
    {
        if (c.RewardModels?.Use is { } existing) // an encoder classifier is read with the label its config.json saves (pargs_reward_label)
            return existing.TryGetValue(objective, out var folder) ? (GoldRewards.IsEncoderFolder(folder) ? EncoderRewardModel.Load(folder) : RewardModels.Load(folder)) : null;
        string trained = Path.Combine(stages.Dir("reward-models"), objective.ToConfigValue());
        return File.Exists(Path.Combine(trained, "config.json")) ? RewardModels.Load(trained, c.TokenizerPath) : null;
    }

    (IReadOnlyList<string>, Dictionary<string, double>) EvaluateStage(string dir, ExperimentConfig.EvaluateSection e, StageRunner stages)
    {
        var records = GenerationJsonl.Read(Path.Combine(stages.Dir("generate"), "generations.jsonl"));
        using var judge = e.RewardModel is { } rmPath ? GoldRewards.FromFolder(rmPath) as IDisposable : null; // an encoder or a causal RM
        IGoldReward gold = judge is IGoldReward given ? given : (e.Reward == "vader-negative"
            ? LexiconSentiment.Negative(VaderLexicon.LoadDefault()) : LexiconSentiment.Positive(VaderLexicon.LoadDefault()));
        using var lm = CausalLM.Load(c.ModelPath, c.TokenizerPath);
        string? baseline = records.Any(r => r.MethodName == e.Baseline) ? e.Baseline : null;
        var progress = stages.For("evaluate");
        var outputs = GenerationEvaluator.Run(records, gold, baseline, new BaseLmProbe(lm), dir,
            progress is null ? null : new InlineProgress<(int Done, int Total)>(p => progress.Report((p.Done, p.Total, "perplexity and coherence"))));
        return (outputs.FilesRelativeTo(dir), new() { ["rows"] = outputs.Rows.Count });
    }

    string WriteReport(IReadOnlyList<DemoStageResult> stages, string? commandLine, double seconds)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("# Pargs experiment\n\n");
        sb.Append("Command: `").Append(commandLine ?? $"pargs experiment --config {c.ConfigPath}").Append("`  \n")
          .Append("Config: `").Append(c.ConfigPath).Append("` · model: `").Append(Path.GetFileName(c.ModelPath)).Append("` · seed: ").Append(c.Seed)
          .Append(" · this invocation: ").Append(seconds.ToString("0.0", inv)).Append(" s · all stages (as first computed): ")
          .Append(stages.Sum(s => s.Seconds).ToString("0.0", inv)).Append(" s · finished: ").Append(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", inv)).Append("\n\n");
        if (c.RewardModels?.Use is { } existing)
            sb.Append("Reward models (existing, not trained by this run): ")
              .Append(string.Join(" · ", existing.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key.ToConfigValue()} = `{kv.Value}`"))).Append("\n\n");
        sb.Append("## Stages\n\n| stage | status | seconds | summary |\n|---|---|---:|---|\n");
        foreach (var s in stages)
            sb.Append("| ").Append(s.Stage).Append(" | ").Append(s.Skipped ? "cached" : "ran").Append(" | ").Append(s.Seconds.ToString("0.0", inv))
              .Append(" | ").Append(string.Join(", ", s.Summary.Select(kv => $"{kv.Key} = {kv.Value.ToString("0.####", inv)}"))).Append(" |\n");
        string rmTable = Path.Combine(c.WorkDir, "reward-models", "prefix-accuracy.md");
        if (stages.Any(s => s.Stage == "reward-models") && File.Exists(rmTable))
            sb.Append("\n## Reward models: accuracy on held-out pairs by prefix length\n\n").Append(File.ReadAllText(rmTable))
              .Append("\n![prefix accuracy](reward-models/prefix-accuracy.png)\n");
        string table = Path.Combine(c.WorkDir, "evaluate", "table.md");
        if (stages.Any(s => s.Stage == "evaluate") && File.Exists(table))
            sb.Append("\n## Methods on the prompts, judged by the evaluation reward\n\n").Append(File.ReadAllText(table))
              .Append("\n![reward vs w](evaluate/reward-vs-w.png)\n\n![reward vs perplexity](evaluate/reward-vs-perplexity.png)\n");
        string path = Path.Combine(c.WorkDir, ReportFile);
        RewardModelStage.WriteText(path, sb.ToString());
        return path;
    }
}
