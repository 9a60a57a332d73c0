using System.Diagnostics;
using Pargs.Data;
using Pargs.Evaluation;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Rewards.Gold;
using TorchSharp;

namespace Pargs.Experiments;

/// <summary>What a demo run produced: its stages, report.md, the comparison table (Markdown) and the total time.</summary>
public sealed record DemoResult(IReadOnlyList<DemoStageResult> Stages, string ReportPath, string Table, double Seconds);

/// <summary>
/// The paper end to end, offline (DESIGN.md §6): stories260K as the base LM, positive sentiment (VADER) as the
/// gold reward, in seven cached stages, each in its own folder of <see cref="DemoOptions.WorkDir"/>:
/// <list type="number">
/// <item><c>prompts/</c>: story openings split (seeded) into train.txt and eval.txt.</item>
/// <item><c>pairs/</c>: two base-LM samples per pair for the train prompts, labelled by a Bradley–Terry draw on the
/// gold reward → train.jsonl / eval.jsonl (TRL explicit format).</item>
/// <item><c>reward-models/</c>: a full-sequence and a partial-sequence reward model, both from the base LM's
/// weights + a score head, same data and budget; their accuracy by prefix length on the eval pairs.</item>
/// <item><c>vocabulary-reward-models/</c>: FaRMA's and GenARM's reward models (causal LMs whose head scores every
/// next token), from the base LM's weights with its head, same pairs and budget (<see cref="DemoOptions.VocabularyBudget"/>).</item>
/// <item><c>dpo/</c>: a DPO policy from the base LM on the same train pairs and budget (<see cref="DpoStage"/>).</item>
/// <item><c>ppo/</c>: a PPO policy from the base LM against the full reward model on the train prompts (<see cref="PpoStage"/>).</item>
/// <item><c>generate/</c>: top-k, Best-of-N, ARGS, PARGS, PARGS-G, FaRMA, FaRMA-G, GenARM, blockwise CD, CARDS and
/// DPO (top-k from the DPO policy) on the held-out prompts, sweeping w; CARDS's r* from the partial RM (<see cref="CardsTarget"/>).</item>
/// <item><c>evaluate/</c>: gold reward (it guided nothing), win rates vs top-k, diversity, coherence, perplexity;
/// table, JSON and plots; <c>report.md</c> at the top of the work folder.</item>
/// </list>
/// A rerun skips every stage whose <see cref="StageManifest"/> matches its inputs.
/// Seeds: prompt split = Seed, pair sampling and labels = Seed + 1, reward-model head and data order (DPO's too) = Seed + 2,
/// decoding = Seed + 100 + j for seed number j.
/// </summary>
public sealed class DemoPipeline
{
    public const string VocabularyRewardModelsStage = "vocabulary-reward-models";
    public static readonly IReadOnlyList<string> StageNames = ["prompts", "pairs", "reward-models", VocabularyRewardModelsStage, "dpo", "ppo", "generate", "evaluate"];

    readonly DemoOptions o;
    readonly string modelPath, promptsPath;
    CausalLM? lm;
    IGoldReward? gold;

    public DemoPipeline(DemoOptions options)
    {
        o = options.Validate();
        modelPath = o.BaseModelPath ?? ShippedData.Find(ShippedData.DefaultModel);
        promptsPath = o.PromptsPath ?? ShippedData.Find(StoryPrompts.Shipped);
    }

    string StageDir(string stage) => Path.Combine(o.WorkDir, stage);
    CausalLM Lm => lm ??= CausalLM.Load(modelPath);
    IGoldReward Gold => gold ??= LexiconSentiment.Positive(VaderLexicon.LoadDefault());
    string GeneratorName => Path.GetFileNameWithoutExtension(modelPath);

    /// <param name="fresh">Delete the stage folders and report first (only those: the work folder may hold other files).</param>
    /// <param name="commandLine">Recorded in report.md so the run can be repeated.</param>
    public DemoResult Run(IProgress<DemoProgress>? progress = null, bool fresh = false, string? commandLine = null)
    {
        var stages = new StageRunner(o.WorkDir, progress, DemoReport.FileName);
        if (fresh) stages.Delete(StageNames, DemoReport.FileName);
        Directory.CreateDirectory(o.WorkDir);
        if (o.Threads is { } threads) Models.Cpu.ComputeThreads.Set(threads);
        var clock = Stopwatch.StartNew();
        try
        {
            var results = new List<DemoStageResult>();
            string fp1 = StageManifest.FingerprintOf("", new { prompts = File.ReadAllText(promptsPath), o.MaxPrompts, o.EvalPromptFraction, o.Seed });
            results.Add(stages.Run("prompts", fp1, PromptsStage));
            string fp2 = StageManifest.FingerprintOf(fp1, new
            {
                model = Path.GetFileName(modelPath), modelBytes = new FileInfo(modelPath).Length, o.PairsPerPrompt, o.EvalPairFraction, o.PairTopK, o.PairMaxNewTokens, o.LabelTemperature, o.DropTiedPairs,
            });
            results.Add(stages.Run("pairs", fp2, dir => PairsStage(dir, progress)));
            string pairs = stages.Dir("pairs");
            string fp3 = StageManifest.FingerprintOf(fp2, new { o.NeedsRewardModels, o.TrainEpochs, o.TrainMaxSteps, o.TrainBatchSize, o.LearningRate });
            if (o.NeedsRewardModels)
                results.Add(stages.Run("reward-models", fp3, dir => RewardModelStage.Run(dir, modelPath, null,
                    Path.Combine(pairs, "train.jsonl"), Path.Combine(pairs, "eval.jsonl"), Lm.Config.MaxPositions,
                    o.ScalarObjectives, o.Budget, stages.For("reward-models"))));
            // Its own stage (and fingerprint): adding FaRMA/GenARM to a run keeps the full and partial models cached.
            string fpVocabulary = StageManifest.FingerprintOf(fp2, new { objectives = o.VocabularyObjectives.Select(v => v.ToConfigValue()), budget = o.VocabularyBudget });
            if (o.VocabularyObjectives.Count > 0)
                results.Add(stages.Run(VocabularyRewardModelsStage, fpVocabulary, dir => RewardModelStage.Run(dir, modelPath, null,
                    Path.Combine(pairs, "train.jsonl"), Path.Combine(pairs, "eval.jsonl"), Lm.Config.MaxPositions,
                    o.VocabularyObjectives, o.VocabularyBudget, stages.For(VocabularyRewardModelsStage))));
            string fpDpo = StageManifest.FingerprintOf(fp2, new { o.Dpo, o.DpoBeta, o.Budget });
            if (o.Dpo)
                results.Add(stages.Run("dpo", fpDpo, dir => DpoStage.Run(dir, modelPath, null,
                    Path.Combine(pairs, "train.jsonl"), Path.Combine(pairs, "eval.jsonl"), o.DpoBeta, o.Budget, stages.For("dpo"))));
            string fpPpo = StageManifest.FingerprintOf(fp3, new { o.Ppo, o.PpoKlCoef, o.Budget, o.MaxNewTokens });
            if (o.Ppo)
                results.Add(stages.Run("ppo", fpPpo, dir => PpoStage.Run(dir, modelPath, Path.Combine(StageDir("prompts"), "train.txt"),
                    Path.Combine(StageDir("reward-models"), "full"), Path.Combine(pairs, "train.jsonl"), o.PpoKlCoef, o.MaxNewTokens, o.Budget, stages.For("ppo"))));
            string fp4 = StageManifest.FingerprintOf(fp3 + (o.VocabularyObjectives.Count > 0 ? fpVocabulary : "") + fpDpo + (o.Ppo ? fpPpo : ""),
                new { methods = o.Methods.Select(m => m.ToString()), o.K, o.Weights, o.GenerationSeeds, o.MaxNewTokens, o.Dpo, o.BlockLength, o.CardsTargetQuantile });
            results.Add(stages.Run("generate", fp4, dir => GenerateStage(dir, progress)));
            string fp5 = StageManifest.FingerprintOf(fp4, new { o.Baseline });
            results.Add(stages.Run("evaluate", fp5, dir =>
            {
                var outputs = EvaluateStage(dir, progress);
                return (outputs.FilesRelativeTo(dir), new Dictionary<string, double> { ["rows"] = outputs.Rows.Count });
            }));
            var report = DemoReport.Write(o, results, commandLine, clock.Elapsed.TotalSeconds);
            string table = File.ReadAllText(Path.Combine(StageDir("evaluate"), "table.md"));
            return new DemoResult(results, report, table, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            DisposeRewardModels();
            lm?.Dispose();
            lm = null;
        }
    }

    (IReadOnlyList<string>, Dictionary<string, double>) PromptsStage(string dir)
    {
        var prompts = StoryPrompts.Read(promptsPath, o.MaxPrompts, minimum: 2);
        var (train, eval) = DataSplit.Split(prompts, o.EvalPromptFraction, o.Seed);
        if (train.Count == 0 || eval.Count == 0)
            throw new PargsException($"{promptsPath}: {prompts.Count} prompts leave {train.Count} to train on and {eval.Count} to evaluate; expected at least one of each");
        StoryPrompts.Write(Path.Combine(dir, "train.txt"), train);
        StoryPrompts.Write(Path.Combine(dir, "eval.txt"), eval);
        return (["train.txt", "eval.txt"], new() { ["train_prompts"] = train.Count, ["eval_prompts"] = eval.Count });
    }

    (IReadOnlyList<string>, Dictionary<string, double>) PairsStage(string dir, IProgress<DemoProgress>? progress)
    {
        var prompts = StoryPrompts.Read(Path.Combine(StageDir("prompts"), "train.txt"));
        var settings = new GoldPairSampler.Settings(o.PairsPerPrompt, o.PairTopK, o.PairMaxNewTokens, o.LabelTemperature, o.DropTiedPairs, o.Seed + 1, o.PairBatchSize);
        var pairs = GoldPairSampler.Sample(Lm, Gold, prompts, settings,
            progress is null ? null : new InlineProgress<(int Done, int Total)>(p => progress.Report(new DemoProgress("pairs", p.Done, p.Total, "sampling continuations"))));
        if (pairs.Count < 2)
            throw new PargsException($"only {pairs.Count} preference pairs were left after dropping ties; sample more (pairs per prompt, prompts or tokens)");
        var (train, eval) = DataSplit.Split(pairs, o.EvalPairFraction, o.Seed + 1);
        GoldPairSampler.WriteJsonl(Path.Combine(dir, "train.jsonl"), train);
        GoldPairSampler.WriteJsonl(Path.Combine(dir, "eval.jsonl"), eval);
        return (["train.jsonl", "eval.jsonl"], new()
        {
            ["pairs_sampled"] = prompts.Count * o.PairsPerPrompt,
            ["pairs_kept"] = pairs.Count,
            ["train_pairs"] = train.Count,
            ["eval_pairs"] = eval.Count,
            ["mean_chosen_gold"] = pairs.Average(p => p.ChosenGold),
            ["mean_rejected_gold"] = pairs.Average(p => p.RejectedGold),
            ["label_agrees_with_gold"] = pairs.Average(p => p.ChosenGold > p.RejectedGold ? 1.0 : 0.0),
        });
    }

    (IReadOnlyList<string>, Dictionary<string, double>) GenerateStage(string dir, IProgress<DemoProgress>? progress)
    {
        var prompts = StoryPrompts.Read(Path.Combine(StageDir("prompts"), "eval.txt"));
        var guides = LoadRewardModels();
        using var policy = o.Dpo ? Models.CausalLM.Load(Path.Combine(StageDir("dpo"), DpoStage.PolicyFolder)) : null;
        using var ppoPolicy = o.Ppo ? Models.CausalLM.Load(Path.Combine(StageDir("ppo"), PpoStage.PolicyFolder)) : null;
        double? cardsTarget = o.Methods.Contains(Decoding.Methods.DecodingMethods.Cards)
            ? CardsTarget.FromPairs(guides[RewardObjective.Partial], Path.Combine(StageDir("pairs"), "train.jsonl"), Lm.Config.MaxPositions, o.CardsTargetQuantile)
            : null;
        var runs = GenerationSweep.Plan(o.SweepWith(cardsTarget), guides, policy, o.Seed + 100, ppoPolicy);
        var records = GenerationSweep.Execute(Lm, runs, prompts, GeneratorName,
            progress is null ? null : new InlineProgress<(int Done, int Total, string Run)>(p => progress.Report(new DemoProgress("generate", p.Done, p.Total, p.Run))));
        GenerationJsonl.Write(Path.Combine(dir, "generations.jsonl"), records);
        var summary = new Dictionary<string, double>
        {
            ["runs"] = runs.Count, ["generations"] = records.Count, ["tokens"] = records.Sum(r => r.Tokens),
            ["decode_seconds"] = records.Sum(r => r.Seconds ?? 0),
        };
        if (cardsTarget is { } target) summary["cards_target_reward"] = Math.Round(target, 4);
        return (["generations.jsonl"], summary);
    }

    EvaluationOutputs EvaluateStage(string dir, IProgress<DemoProgress>? progress)
    {
        var records = GenerationJsonl.Read(Path.Combine(StageDir("generate"), "generations.jsonl"));
        string? baseline = records.Any(r => r.MethodName == o.Baseline) ? o.Baseline : null;
        return GenerationEvaluator.Run(records, Gold, baseline, new BaseLmProbe(Lm), dir,
            progress is null ? null : new InlineProgress<(int Done, int Total)>(p => progress.Report(new DemoProgress("evaluate", p.Done, p.Total, "perplexity and coherence"))));
    }

    readonly Dictionary<RewardObjective, IRewardModel> guides = new();

    /// <summary>The reward models the methods need, by objective, from the stages that trained them.</summary>
    IReadOnlyDictionary<RewardObjective, IRewardModel> LoadRewardModels()
    {
        foreach (var objective in o.ScalarObjectives.Concat(o.VocabularyObjectives))
            if (!guides.ContainsKey(objective))
                guides[objective] = RewardModels.Load(Path.Combine(StageDir(objective.HasVocabularyHead() ? VocabularyRewardModelsStage : "reward-models"), objective.ToConfigValue()));
        return guides;
    }

    void DisposeRewardModels()
    {
        foreach (var rm in guides.Values) (rm as IDisposable)?.Dispose();
        guides.Clear();
    }
}
