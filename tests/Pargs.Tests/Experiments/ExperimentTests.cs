using System.Text.Json;
using Pargs.Data;
using Pargs.Decoding;
using Pargs.Evaluation;
using Pargs.Experiments;
using Pargs.Rewards;

namespace Pargs.Tests.Experiments;

/// <summary>`pargs experiment`: config validation, a tiny end-to-end run, and the shipped partial reward model.</summary>
public class ExperimentTests
{
    static string ShippedRm => Path.Combine(TestPaths.RepoRoot, "data", "models", "stories260K-partial-rm");

    static ExperimentConfig Parse(string json, string dir)
    {
        string path = Path.Combine(dir, "config.json");
        File.WriteAllText(path, json);
        return ExperimentConfig.Load(path);
    }

    static void WritePairs(string path, int n)
    {
        string[] good = ["happy and she smiled", "kind and they were friends", "a great day with her mom"];
        string[] bad = ["sad and she cried", "angry and he was mean", "a bad day and she was scared"];
        PairFiles.Write(path, Enumerable.Range(0, n).Select(i =>
            new PreferencePair($"Once upon a time, there was a girl {i} who was", " " + good[i % 3], " " + bad[(i + 1) % 3])));
    }

    [Theory]
    [InlineData("""{"modle": "x"}""", "'modle'")]
    [InlineData("""{"data": {"eval_fraction": 0.2}}""", "'data.train'")]
    [InlineData("""{"data": {"train": "pairs.jsonl", "template": "alpaca"}}""", "'data.template'")]
    [InlineData("""{"data": {"train": "pairs.jsonl", "max_length": "long"}}""", "'data.max_length'")]
    [InlineData("""{"data": {"train": "missing.jsonl"}}""", "'data.train'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["partial"]}, "generate": {"from_eval_data": 2, "methods": ["args"]}}""", "'generate.methods'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "generate": {"from_eval_data": 2, "methods": ["dpo"]}}""", "'generate.methods'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "generate": {"from_eval_data": 2, "methods": ["ppo"]}}""", "'generate.methods'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["partial"]}, "ppo": {}}""", "'ppo'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"kl_coef": -1}}""", "'ppo.kl_coef'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"kl_estimator": "k2"}}""", "'ppo.kl_estimator'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"lam": 1.5}}""", "'ppo.lam'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"cliprange": 0}}""", "'ppo.cliprange'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"num_ppo_epochs": 0}}""", "'ppo.num_ppo_epochs'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"num_mini_batches": 3, "batch_size": 8}}""", "'ppo.num_mini_batches'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"response_length": 0}}""", "'ppo.response_length'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"missing_eos_penalty": -2}}""", "'ppo.missing_eos_penalty'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"learning_rate": 1e-5}}""", "'ppo.learning_rate'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"]}, "ppo": {"lr": 0}}""", "'ppo.lr'")]
    [InlineData("""{"generate": {"methods": ["topk"]}}""", "'generate.prompts'")]
    [InlineData("""{"generate": {"prompts": "pairs.jsonl", "methods": ["topk", "pargs", "topk"]}}""", "'generate.methods'")]
    [InlineData("""{"generate": {"prompts": "pairs.jsonl", "methods": ["topk"], "w": [1, 2, 1]}}""", "'generate.w'")]
    [InlineData("""{"reward_models": {"use": {"partial": "{RM}"}}, "generate": {"prompts": "pairs.jsonl", "methods": ["pargs-g"], "w": [1, 2]}, "evaluate": {"baseline": "pargs-g"}}""", "'evaluate.baseline'")]
    [InlineData("""{"generate": {"prompts": "pairs.jsonl", "methods": ["topk"]}, "evaluate": {"baseline": "greedy"}}""", "'evaluate.baseline'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["half"]}}""", "'reward_models.objectives'")]
    [InlineData("""{"generate": {"prompts": ".", "methods": ["topk"]}}""", "'generate.prompts'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["partial"]}, "generate": {"from_eval_data": 2, "methods": ["farma"]}}""", "'generate.methods'")]
    [InlineData("""{"reward_models": {"use": {"partial": "{RM}"}}, "generate": {"prompts": "pairs.jsonl", "methods": ["cards"]}}""", "'generate.target_reward'")]
    [InlineData("""{"generate": {"prompts": "pairs.jsonl", "methods": ["topk"], "block_length": 0}}""", "'generate.block_length'")]
    [InlineData("""{"reward_models": {}}""", "'reward_models'")]
    [InlineData("""{"data": {"train": "pairs.jsonl"}, "generate": {"from_eval_data": 2}, "evaluate": {"reward": "gpt4"}}""", "'evaluate.reward'")]
    public void Config_errors_name_the_field(string json, string field)
    {
        using var temp = new TempDir();
        WritePairs(temp.File("pairs.jsonl"), 4);
        var e = Assert.Throws<PargsException>(() => Parse(json.Replace("{RM}", ShippedRm), temp.Path));
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void Experiment_trains_farma_and_genarm_reward_models_and_decodes_every_peer_method()
    {
        using var temp = new TempDir();
        WritePairs(temp.File("pairs.jsonl"), 12);
        var json = $$$"""
            {
              "model": {{{JsonSerializer.Serialize(TestPaths.Stories260KGguf)}}}, "work": {{{JsonSerializer.Serialize(temp.File("work"))}}}, "seed": 2,
              "data": {"train": "pairs.jsonl", "eval_fraction": 0.25, "max_length": 64, "limit": 10},
              "reward_models": {"objectives": ["partial", "farma", "genarm"], "max_steps": 2, "batch_size": 4},
              "generate": {"from_eval_data": 2, "methods": ["farma", "farma-g", "genarm", "cd", "cards"], "k": 3, "w": [1], "max_new_tokens": 6, "block_length": 2}
            }
            """;
        var config = Parse(json, temp.Path);
        Assert.Equal(2, config.Generate!.BlockLength);
        var result = new ExperimentPipeline(config).Run();
        var rms = result.Stages.Single(s => s.Stage == "reward-models").Summary;
        Assert.Equal(2, rms["farma_steps"]);
        Assert.Equal(2, rms["genarm_steps"]);
        Assert.True(result.Stages.Single(s => s.Stage == "generate").Summary.ContainsKey("cards_target_reward"));
        var generations = GenerationJsonl.Read(Path.Combine(config.WorkDir, "generate", "generations.jsonl"));
        Assert.Equal(["farma", "farma-g", "genarm", "cd", "cards"], generations.Select(g => g.Method!).Distinct());
        Assert.All(generations.Where(g => g.Method is "farma" or "genarm"), g => Assert.NotNull(g.KlToBase));
    }

    [Fact]
    public void Paths_resolve_beside_the_config_and_defaults_fill_the_rest()
    {
        using var temp = new TempDir();
        WritePairs(temp.File("pairs.jsonl"), 4);
        var c = Parse("""{"data": {"train": "pairs.jsonl", "template": "hh"}, "dpo": {}, /* comments are fine */ }""", temp.Path);
        Assert.Equal(temp.File("pairs.jsonl"), c.Data!.Train);
        Assert.Equal("hh", c.Data.Template.Name);
        Assert.Equal(0.1, c.Dpo!.Beta);
        Assert.True(File.Exists(c.ModelPath));
        Assert.Null(c.RewardModels);
        Assert.Equal(Path.Combine("runs", "config"), c.WorkDir);
    }

    [Fact]
    public void Ppo_section_takes_trl_names_and_the_reward_models_budget()
    {
        using var temp = new TempDir();
        WritePairs(temp.File("pairs.jsonl"), 4);
        var c = Parse("""
            {"data": {"train": "pairs.jsonl"}, "reward_models": {"objectives": ["full"], "max_steps": 7, "batch_size": 6, "lr": 2e-4},
             "ppo": {"kl_coef": 0.2, "kl_estimator": "k3", "lam": 0.9, "num_mini_batches": 2, "whiten_rewards": true, "response_length": 12},
             "generate": {"from_eval_data": 2, "methods": ["topk", "ppo"]}, "evaluate": {"baseline": "ppo"}}
            """, temp.Path);
        var ppo = c.Ppo!;
        Assert.Equal(0.2, ppo.Options.KlCoef);
        Assert.Equal(Pargs.Training.PpoKlEstimator.K3, ppo.Options.KlEstimator);
        Assert.Equal(0.9, ppo.Options.Lambda);
        Assert.Equal(2, ppo.Options.MiniBatches);
        Assert.True(ppo.Options.WhitenRewards);
        Assert.Equal(12, ppo.ResponseLength);
        Assert.Equal(1.0, ppo.Options.Temperature); // the ppo row samples at T = 1 (TRL's default is 0.7)
        Assert.Equal(0.95, new Pargs.Training.PpoTrainingOptions().Lambda); // what "lam" overrode
        Assert.Equal(new ExperimentConfig.Budget(1, 7, 6, 2e-4), ppo.Budget);
        Assert.True(c.Generate!.Ppo);
        Assert.Equal("ppo", c.Evaluate!.Baseline);
    }

    [Fact]
    public void Tiny_experiment_runs_every_stage_on_user_pairs_with_a_reward_model_judge()
    {
        using var temp = new TempDir();
        WritePairs(temp.File("pairs.jsonl"), 12);
        var json = $$$"""
            {
              "model": {{{JsonSerializer.Serialize(TestPaths.Stories260KGguf)}}}, "work": {{{JsonSerializer.Serialize(temp.File("work"))}}}, "seed": 3,
              "data": {"train": "pairs.jsonl", "eval_fraction": 0.25, "max_length": 64, "limit": 10},
              "reward_models": {"objectives": ["full", "partial"], "max_steps": 2, "batch_size": 4},
              "dpo": {"beta": 0.2},
              "ppo": {"kl_coef": 0.1},
              "generate": {"from_eval_data": 2, "methods": ["topk", "pargs", "dpo", "ppo"], "k": 4, "w": [2], "max_new_tokens": 5},
              "evaluate": {"reward": {"reward_model": {{{JsonSerializer.Serialize(ShippedRm)}}}}}
            }
            """;
        var config = Parse(json, temp.Path);
        var result = new ExperimentPipeline(config).Run(commandLine: "pargs experiment (test)");

        Assert.Equal(ExperimentPipeline.StageNames, result.Stages.Select(s => s.Stage));
        var data = result.Stages[0].Summary;
        Assert.Equal(10, data["train_pairs"] + data["eval_pairs"]); // limit 10 of 12
        Assert.Equal(3, data["eval_pairs"]); // round(10 × 0.25), halves away from zero
        Assert.Equal(2, result.Stages[1].Summary["partial_steps"]);
        Assert.Equal(2, result.Stages[2].Summary["steps"]); // DPO inherits the reward models' budget
        var ppo = result.Stages[3].Summary; // PPO too: 2 optimizer steps = 1 update of 4 PPO epochs (at least one), 4 rollouts
        Assert.Equal(1, ppo["updates"]);
        Assert.Equal(4, ppo["episodes"]);
        Assert.Equal(7, ppo["train_prompts"]); // the 7 train pairs' distinct prompts
        Assert.True(File.Exists(Path.Combine(config.WorkDir, "ppo", "logs", "metrics.jsonl")));
        var generations = GenerationJsonl.Read(Path.Combine(config.WorkDir, "generate", "generations.jsonl"));
        Assert.Equal(2 * 4, generations.Count);
        Assert.Equal(["topk", "pargs", "dpo", "ppo"], generations.Select(g => g.Method!).Distinct());
        var scored = GenerationJsonl.Read(Path.Combine(config.WorkDir, "evaluate", "generations.scored.jsonl"));
        Assert.All(scored, g => Assert.True(double.IsFinite(g.Reward!.Value)));
        var report = File.ReadAllText(result.ReportPath);
        Assert.Contains("| dpo |", report);
        Assert.Contains("| ppo |", report);
        Assert.Contains("prefix-accuracy.png", report);

        var again = new ExperimentPipeline(config).Run();
        Assert.All(again.Stages, s => Assert.True(s.Skipped, s.Stage));
    }

    [Theory]
    [InlineData("""{"reward_models": {"use": {"partial": "{RM}"}, "objectives": ["partial"]}}""", "'reward_models.objectives'")]
    [InlineData("""{"reward_models": {"use": {"fuzzy": "{RM}"}}}""", "'reward_models.use.fuzzy'")]
    [InlineData("""{"reward_models": {"use": {}}}""", "'reward_models.use'")]
    [InlineData("""{"reward_models": {"use": {"full": "{RM}"}}}""", "'reward_models.use.full'")] // the shipped RM is a partial one
    [InlineData("""{"reward_models": {"use": {"partial": "{RM}/config.json"}}}""", "'reward_models.use.partial'")]
    [InlineData("""{"reward_models": {"use": {"partial": "empty-folder"}}}""", "'reward_models.use.partial'")]
    [InlineData("""{"reward_models": {"use": {"partial": "{RM}"}}, "generate": {"prompts": "prompts.txt", "methods": ["args"]}}""", "'generate.methods'")]
    public void Existing_reward_model_errors_name_the_field(string json, string field)
    {
        using var temp = new TempDir();
        File.WriteAllText(temp.File("prompts.txt"), "Once upon a time\n");
        Directory.CreateDirectory(temp.File("empty-folder"));
        var e = Assert.Throws<PargsException>(() => Parse(json.Replace("{RM}", ShippedRm), temp.Path));
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void Experiment_with_an_existing_reward_model_trains_nothing_and_decodes_with_it()
    {
        using var temp = new TempDir();
        File.WriteAllText(temp.File("prompts.txt"), "Once upon a time, there was a girl who was\nTom saw a big dog and he felt\n");
        var json = $$$"""
            {
              "model": {{{JsonSerializer.Serialize(TestPaths.Stories260KGguf)}}}, "work": {{{JsonSerializer.Serialize(temp.File("work"))}}},
              "reward_models": {"use": {"partial": {{{JsonSerializer.Serialize(ShippedRm)}}}}},
              "generate": {"prompts": "prompts.txt", "methods": ["topk", "pargs"], "k": 4, "w": [2], "max_new_tokens": 5},
              "evaluate": {"reward": "vader-positive"}
            }
            """;
        var config = Parse(json, temp.Path);
        Assert.Null(config.Data);
        Assert.Equal([RewardObjective.Partial], config.RewardModels!.Objectives);
        var result = new ExperimentPipeline(config).Run();

        Assert.Equal(["generate", "evaluate"], result.Stages.Select(s => s.Stage));
        Assert.False(Directory.Exists(Path.Combine(config.WorkDir, "reward-models")));
        var generations = GenerationJsonl.Read(Path.Combine(config.WorkDir, "generate", "generations.jsonl"));
        Assert.Equal(2 * 2, generations.Count);
        Assert.Equal(2, generations.Count(g => g.MethodName == "pargs"));
        Assert.Contains("partial = `" + ShippedRm + "`", File.ReadAllText(result.ReportPath));
    }

    [Fact]
    public void A_changed_existing_reward_model_invalidates_the_cached_generations()
    {
        using var temp = new TempDir();
        File.WriteAllText(temp.File("prompts.txt"), "Once upon a time, there was a girl who was\n");
        string folder = temp.File("rm");
        using (var rm = RewardModel.Load(ShippedRm)) rm.Save(folder);
        var json = $$$"""
            {
              "model": {{{JsonSerializer.Serialize(TestPaths.Stories260KGguf)}}}, "work": {{{JsonSerializer.Serialize(temp.File("work"))}}},
              "reward_models": {"use": {"partial": "rm"}},
              "generate": {"prompts": "prompts.txt", "methods": ["pargs"], "k": 4, "w": [2], "max_new_tokens": 3}
            }
            """;
        var config = Parse(json, temp.Path);
        Assert.False(new ExperimentPipeline(config).Run().Stages.Single().Skipped);
        Assert.True(new ExperimentPipeline(config).Run().Stages.Single().Skipped);
        // Same shape, same file sizes, same folder: only the score head's values change.
        using (var rm = RewardModel.Load(folder))
        {
            using (TorchSharp.torch.no_grad()) rm.ScoreWeight.neg_();
            rm.Save(folder);
        }
        Assert.False(new ExperimentPipeline(config).Run().Stages.Single().Skipped);
    }

    [Theory]
    [InlineData("\"k\": 100000", "'generate.k'")]
    [InlineData("\"max_new_tokens\": 100000", "'generate.max_new_tokens'")]
    public void Settings_the_model_cannot_take_name_the_config_field_before_generating(string setting, string field)
    {
        using var temp = new TempDir();
        File.WriteAllText(temp.File("prompts.txt"), "Once upon a time\n");
        var json = $$$"""
            {
              "model": {{{JsonSerializer.Serialize(TestPaths.Stories260KGguf)}}}, "work": {{{JsonSerializer.Serialize(temp.File("work"))}}},
              "generate": {"prompts": "prompts.txt", "methods": ["topk"], {{{setting}}}}
            }
            """;
        // A report from an earlier, successful run of the same work folder must not outlive the failed one.
        Directory.CreateDirectory(temp.File("work"));
        File.WriteAllText(Path.Combine(temp.File("work"), ExperimentPipeline.ReportFile), "# an earlier run");
        var e = Assert.Throws<PargsException>(() => new ExperimentPipeline(Parse(json, temp.Path)).Run());
        Assert.Contains(field, e.Message);
        Assert.False(File.Exists(Path.Combine(temp.File("work"), "generate", "generations.jsonl")));
        Assert.False(File.Exists(Path.Combine(temp.File("work"), ExperimentPipeline.ReportFile)));
    }

    [Fact]
    public void A_bad_data_row_points_at_the_config_field_that_skips_it()
    {
        using var temp = new TempDir();
        WritePairs(temp.File("pairs.jsonl"), 4);
        File.AppendAllText(temp.File("pairs.jsonl"), "{\"prompt\": \"x\"}\n");
        var json = $$$"""{"work": {{{JsonSerializer.Serialize(temp.File("work"))}}}, "data": {"train": "pairs.jsonl"}}""";
        var e = Assert.Throws<PargsException>(() => new ExperimentPipeline(Parse(json, temp.Path)).Run());
        Assert.Contains("pairs.jsonl:5", e.Message);
        Assert.Contains("\"skip_bad_rows\": true", e.Message);
        Assert.DoesNotContain("--on-bad-row", e.Message);
    }

    [Fact]
    public void Every_shipped_experiment_config_parses()
    {
        var configs = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "data", "experiments"), "*.json");
        Assert.Contains(configs, f => f.EndsWith("shipped-partial-rm.json"));
        foreach (var path in configs)
        {
            var c = ExperimentConfig.Load(path);
            Assert.True(File.Exists(c.ModelPath), path);
            Assert.True(c.RewardModels is not null, path);
        }
    }

    [Fact]
    public void Shipped_partial_reward_model_loads_and_prefers_positive_continuations()
    {
        using var rm = RewardModel.Load(ShippedRm);
        Assert.Equal(RewardObjective.Partial, rm.Objective);
        Assert.Equal(512, rm.Config.VocabSize);
        using var judge = new RewardModelJudge(RewardModel.Load(ShippedRm));
        string prompt = "Once upon a time, there was a little girl named Lily. She";
        Assert.True(judge.Score(prompt, " was very happy and she loved her friends.") > judge.Score(prompt, " was very sad and she cried and cried."));
    }
}
