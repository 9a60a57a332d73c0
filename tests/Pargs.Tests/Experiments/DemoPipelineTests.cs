using System.Text.Json;
using Pargs.Data;
using Pargs.Decoding;
using Pargs.Evaluation;
using Pargs.Experiments;
using Pargs.Rewards;

namespace Pargs.Tests.Experiments;

/// <summary>The demo end to end at a tiny size on the real stories260K (seconds, not minutes).</summary>
public class DemoPipelineTests
{
    static DemoOptions Tiny(string work, IReadOnlyList<Pargs.Decoding.Methods.DecodingMethod> methods, bool dpo = false, bool ppo = false) => new()
    {
        Dpo = dpo,
        Ppo = ppo,
        WorkDir = work,
        BaseModelPath = TestPaths.Stories260KGguf,
        PromptsPath = Path.Combine(TestPaths.RepoRoot, StoryPrompts.Shipped),
        MaxPrompts = 4,
        PairsPerPrompt = 3,
        PairMaxNewTokens = 12,
        DropTiedPairs = false, // a handful of 12-token samples often has no sentiment word at all
        TrainMaxSteps = 3,
        TrainBatchSize = 4,
        Methods = methods,
        Weights = [2],
        GenerationSeeds = 1,
        MaxNewTokens = 8,
        K = 4,
        Threads = 1,
    };

    internal static readonly Pargs.Decoding.Methods.DecodingMethod[] AllMethods =
        [Pargs.Decoding.Methods.DecodingMethods.TopK, Pargs.Decoding.Methods.DecodingMethods.BestOfN, Pargs.Decoding.Methods.DecodingMethods.Args, Pargs.Decoding.Methods.DecodingMethods.Pargs, Pargs.Decoding.Methods.DecodingMethods.PargsGreedy];

    [Fact]
    public void Top_k_demo_writes_every_stage_output_and_a_rerun_uses_the_cache()
    {
        using var temp = new TempDir();
        var options = Tiny(temp.Path, [Pargs.Decoding.Methods.DecodingMethods.TopK]);
        var progress = new List<DemoProgress>();
        var first = new DemoPipeline(options).Run(new InlineProgress<DemoProgress>(progress.Add), commandLine: "pargs demo (test)");

        Assert.Equal(["prompts", "pairs", "generate", "evaluate"], first.Stages.Select(s => s.Stage));
        Assert.All(first.Stages, s => Assert.False(s.Skipped));
        Assert.All(first.Stages, s => Assert.Contains(progress, p => p.Stage == s.Stage && p.Message.StartsWith("done")));

        var train = StoryPrompts.Read(Path.Combine(temp.Path, "prompts", "train.txt"));
        var eval = StoryPrompts.Read(Path.Combine(temp.Path, "prompts", "eval.txt"), max: null);
        Assert.Equal(4, train.Count + eval.Count);
        Assert.Empty(train.Intersect(eval));

        var pairs = PreferenceReader.Read(Path.Combine(temp.Path, "pairs", "train.jsonl")).Pairs
            .Concat(PreferenceReader.Read(Path.Combine(temp.Path, "pairs", "eval.jsonl")).Pairs).ToList();
        Assert.InRange(pairs.Count, 2, train.Count * 3);
        Assert.All(pairs, p => Assert.Contains(p.Prompt, train));

        var generations = GenerationJsonl.Read(Path.Combine(temp.Path, "generate", "generations.jsonl"));
        Assert.Equal(eval.Count, generations.Count);
        Assert.All(generations, g => Assert.Equal("topk", g.Method));

        AssertEvaluation(temp.Path, ["topk"]);
        var report = File.ReadAllText(first.ReportPath);
        Assert.Contains("pargs demo (test)", report);
        Assert.Contains("| topk |", report);

        var second = new DemoPipeline(options).Run();
        Assert.All(second.Stages, s => Assert.True(s.Skipped, s.Stage));

        // A decoding setting changes only the stages from generation on.
        var third = new DemoPipeline(options with { MaxNewTokens = 6 }).Run();
        Assert.Equal([true, true, false, false], third.Stages.Select(s => s.Skipped));
    }

    [Fact]
    public void Full_demo_trains_both_reward_models_and_a_dpo_policy_and_reports_every_method()
    {
        using var temp = new TempDir();
        var result = new DemoPipeline(Tiny(temp.Path, AllMethods, dpo: true, ppo: true)).Run();

        // The scalar methods need no vocabulary-head reward models: that stage does not run.
        Assert.Equal(DemoPipeline.StageNames.Where(s => s != DemoPipeline.VocabularyRewardModelsStage), result.Stages.Select(s => s.Stage));
        string rms = Path.Combine(temp.Path, "reward-models");
        foreach (var objective in new[] { "full", "partial" })
        {
            using var rm = RewardModel.Load(Path.Combine(rms, objective));
            Assert.Equal(objective, rm.Objective?.ToConfigValue());
            Assert.True(File.Exists(Path.Combine(rms, "logs", objective, "metrics.jsonl")));
        }
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(rms, "prefix-accuracy.json"))))
            foreach (var objective in new[] { "full", "partial" })
            {
                var model = json.RootElement.GetProperty("models").GetProperty(objective);
                Assert.InRange(model.GetProperty("accuracy").GetDouble(), 0, 1);
                Assert.NotEmpty(model.GetProperty("by_exact_length").EnumerateArray());
            }
        Assert.True(new FileInfo(Path.Combine(rms, "prefix-accuracy.png")).Length > 0);
        Assert.Equal(3, result.Stages.Single(s => s.Stage == "reward-models").Summary["partial_steps"]);

        // DPO: same pairs and budget as the reward models; the policy is a loadable causal LM that differs from the base.
        var dpo = result.Stages.Single(s => s.Stage == "dpo");
        Assert.Equal(3, dpo.Summary["steps"]);
        Assert.Equal(result.Stages.Single(s => s.Stage == "reward-models").Summary["train_pairs"], dpo.Summary["train_pairs"]);
        using (var policy = Pargs.Models.CausalLM.Load(Path.Combine(temp.Path, "dpo", DpoStage.PolicyFolder)))
        using (var baseLm = Pargs.Models.CausalLM.Load(TestPaths.Stories260KGguf))
        {
            var p = policy.StateDictForSaving();
            var b = baseLm.StateDictForSaving();
            Assert.Contains(p.Keys, k => !p[k].allclose(b[k], rtol: 0, atol: 0));
        }

        // PPO: against the full reward model, DPO's 3 optimizer steps = 1 update of 4 PPO epochs; a loadable policy.
        var ppo = result.Stages.Single(s => s.Stage == "ppo");
        Assert.Equal(1, ppo.Summary["updates"]);
        using (var policy = Pargs.Models.CausalLM.Load(Path.Combine(temp.Path, "ppo", PpoStage.PolicyFolder)))
            Assert.Equal(512, policy.Config.VocabSize);

        var generations = GenerationJsonl.Read(Path.Combine(temp.Path, "generate", "generations.jsonl"));
        int evalPrompts = StoryPrompts.Read(Path.Combine(temp.Path, "prompts", "eval.txt")).Count;
        Assert.Equal(7 * evalPrompts, generations.Count); // one seed, one w: one generation per method and prompt
        Assert.All(generations.Where(g => g.Method is "args" or "pargs" or "pargs-g"), g => Assert.Equal(2.0, g.W));
        Assert.All(generations.Where(g => g.Method == "dpo"), g => { Assert.Null(g.W); Assert.Equal(4, g.K); });
        AssertEvaluation(temp.Path, ["topk", "best-of-n", "args", "pargs", "pargs-g", "dpo", "ppo"]);
        var report = File.ReadAllText(result.ReportPath);
        Assert.Contains("prefix-accuracy.png", report);
        Assert.Contains("## DPO", report);
    }

    [Fact]
    public void The_peer_methods_get_their_reward_models_rows_and_the_frontier()
    {
        using var temp = new TempDir();
        var peers = new[]
        {
            Pargs.Decoding.Methods.DecodingMethods.TopK, Pargs.Decoding.Methods.DecodingMethods.Pargs,
            Pargs.Decoding.Methods.DecodingMethods.Farma, Pargs.Decoding.Methods.DecodingMethods.FarmaGreedy, Pargs.Decoding.Methods.DecodingMethods.GenArm,
            Pargs.Decoding.Methods.DecodingMethods.ControlledDecoding, Pargs.Decoding.Methods.DecodingMethods.Cards,
        };
        // First without the peers: adding them later must keep the full and partial reward models cached.
        var scalarOnly = Tiny(temp.Path, peers.Take(2).ToList());
        new DemoPipeline(scalarOnly).Run();
        var options = Tiny(temp.Path, peers) with { BlockLength = 3, VocabularyRewardModelMaxSteps = 2 };
        var result = new DemoPipeline(options).Run();

        Assert.Equal(["prompts", "pairs", "reward-models", DemoPipeline.VocabularyRewardModelsStage, "generate", "evaluate"], result.Stages.Select(s => s.Stage));
        Assert.Equal([true, true, true, false, false, false], result.Stages.Select(s => s.Skipped));
        var vocabulary = result.Stages.Single(s => s.Stage == DemoPipeline.VocabularyRewardModelsStage);
        foreach (var objective in new[] { RewardObjective.Farma, RewardObjective.Genarm })
        {
            string name = objective.ToConfigValue();
            using var rm = VocabularyRewardModel.Load(Path.Combine(temp.Path, DemoPipeline.VocabularyRewardModelsStage, name));
            Assert.Equal(objective, rm.Objective);
            Assert.Equal(2, vocabulary.Summary[$"{name}_steps"]); // the capped budget
            Assert.InRange(vocabulary.Summary[$"{name}_accuracy"], 0, 1);
        }

        // r*: the 0.9 quantile of the partial RM's rewards of the train pairs, recomputed here.
        using (var partial = RewardModel.Load(Path.Combine(temp.Path, "reward-models", "partial")))
        {
            double expected = CardsTarget.FromPairs(partial, Path.Combine(temp.Path, "pairs", "train.jsonl"), partial.Config.MaxPositions);
            Assert.Equal(Math.Round(expected, 4), result.Stages.Single(s => s.Stage == "generate").Summary["cards_target_reward"]);
        }

        var generations = GenerationJsonl.Read(Path.Combine(temp.Path, "generate", "generations.jsonl"));
        int evalPrompts = StoryPrompts.Read(Path.Combine(temp.Path, "prompts", "eval.txt")).Count;
        Assert.Equal(peers.Length * evalPrompts, generations.Count);
        Assert.All(generations.Where(g => g.Method == "cd"), g => { Assert.Equal(4, g.K); Assert.Null(g.W); }); // K = k
        Assert.All(generations.Where(g => g.Method == "cards"), g => Assert.Equal(4, g.K));                 // top-k = k, not CARDS's 40
        // A per-token policy carries its log-probability and the base LM's; argmax and search methods do not.
        foreach (var g in generations)
        {
            bool policy = g.Method is "topk" or "pargs" or "farma" or "genarm";
            Assert.Equal(policy, g.PolicyLogProb is not null);
            Assert.Equal(policy, g.BaseLogProb is not null);
        }
        // Top-k renormalises the base LM over its k best tokens: log π ≥ log p_base token by token, so KL per sample ≥ 0.
        Assert.All(generations.Where(g => g.Method == "topk"), g => Assert.True(g.KlToBase >= -1e-4, $"{g.KlToBase}"));

        AssertEvaluation(temp.Path, ["topk", "pargs", "farma", "farma-g", "genarm", "cd", "cards"]);
        Assert.True(new FileInfo(Path.Combine(temp.Path, "evaluate", "frontier.png")).Length > 0);
        var table = File.ReadAllText(Path.Combine(temp.Path, "evaluate", "table.md"));
        Assert.Contains("KL (nats)", table);
        var report = File.ReadAllText(result.ReportPath);
        Assert.Contains("evaluate/frontier.png", report);
        Assert.Contains("CARDS: r* = ", report);
    }

    [Fact]
    public void Fresh_deletes_the_stage_outputs_but_not_other_files()
    {
        using var temp = new TempDir();
        var options = Tiny(temp.Path, [Pargs.Decoding.Methods.DecodingMethods.TopK]) with { MaxNewTokens = 4 };
        File.WriteAllText(temp.File("keep.txt"), "mine");
        new DemoPipeline(options).Run();
        var again = new DemoPipeline(options).Run(fresh: true);
        Assert.All(again.Stages, s => Assert.False(s.Skipped));
        Assert.True(File.Exists(temp.File("keep.txt")));
    }

    internal static void AssertEvaluation(string work, IReadOnlyList<string> methods)
    {
        string dir = Path.Combine(work, "evaluate");
        foreach (var file in new[] { "table.md", "report.json", "generations.scored.jsonl", "reward-vs-w.png", "reward-vs-w.svg", "reward-vs-perplexity.png", "reward-vs-perplexity.svg" })
            Assert.True(new FileInfo(Path.Combine(dir, file)).Length > 0, file);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json")));
        var rows = json.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(methods.OrderBy(m => m), rows.Select(r => r.GetProperty("method").GetString()!).Distinct().OrderBy(m => m));
        Assert.All(rows, r => Assert.True(double.IsFinite(r.GetProperty("perplexity").GetDouble())));
        Assert.All(rows, r => Assert.InRange(r.GetProperty("reward_mean").GetDouble(), -1, 1));
        var table = File.ReadAllText(Path.Combine(dir, "table.md"));
        foreach (var m in methods) Assert.Contains($"| {m} |", table);
        Assert.All(GenerationJsonl.Read(Path.Combine(dir, "generations.scored.jsonl")), g => Assert.NotNull(g.Reward));
    }
}
