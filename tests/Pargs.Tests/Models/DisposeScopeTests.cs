using System.Text.Json.Nodes;
using Pargs.Data;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Models.Encoders;
using Pargs.Rewards;
using Pargs.Tests.Decoding;
using Pargs.Tests.Dpo;
using Pargs.Tests.Models.Encoders;
using Pargs.Tests.Rewards;
using Pargs.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// Every torch-path entry point, called from outside any DisposeScope, creates no tensor outside one. WHY: TorchSharp 0.107
/// frees a tensor's native handle in its finalizer, and an intermediate of a chain (<c>x.matmul(w).add_(b)</c>) is
/// unreachable once its handle is read for the next native call, so a collection on another thread can free it while
/// libtorch reads it (a segfault). A tensor created inside a scope is held by the scope's set until the scope ends.
/// TorchSharp counts, per thread, the tensors created outside every scope (<see cref="DisposeScopeManager.Statistics"/>):
/// an entry point that leaves an intermediate outside a scope shows up here as a non-zero count, whatever the GC does.
/// What an entry point returns to its caller leaves its scope (MoveToOuter: detached when there is no outer scope), which
/// TorchSharp counts apart (DetachedFromScopeCount), so the count asked here is zero. Tensors made on other threads (the
/// decode kernels' row-split halves) are each thread's own; those threads open their own scope (BatchSession.RunPart).
/// </summary>
public class DisposeScopeTests : IDisposable
{
    readonly TempDir dir = new();
    public void Dispose() => dir.Dispose();

    /// <summary>Tensors the calling thread created outside any DisposeScope while <paramref name="act"/> ran.</summary>
    static long CreatedOutsideAnyScope(Action act)
    {
        var statistics = DisposeScopeManager.Statistics.TensorStatistics;
        long before = statistics.CreatedOutsideScopeCount;
        act();
        return statistics.CreatedOutsideScopeCount - before;
    }

    /// <summary>The count is real: a tensor made outside a scope is counted, one made inside is not.</summary>
    [Fact]
    public void The_counter_counts_tensors_made_outside_a_scope_and_only_those()
    {
        var x = ones(3);
        Assert.Equal(2, CreatedOutsideAnyScope(() => _ = x.exp().neg()));
        Assert.Equal(0, CreatedOutsideAnyScope(() =>
        {
            using var scope = NewDisposeScope();
            _ = scope.MoveToOuter(x.exp().neg());
        }));
    }

    /// <summary>
    /// Tables a lazily tabulated rotary embedding grows inside a caller's scope (a forward's, now that every forward has
    /// one) stay the embedding's after that scope ends: the same values as tables tabulated in full, readable again.
    /// </summary>
    [Fact]
    public void Rotary_tables_grown_inside_a_scope_outlive_it()
    {
        using var full = new Pargs.Models.Families.Llama.RotaryEmbedding(16, 200, 10000.0, null);
        using var lazy = new Pargs.Models.Families.Llama.RotaryEmbedding(16, 200, 10000.0, null, initialRows: 3);
        var positions = tensor(Enumerable.Range(0, 40).Select(i => (long)i).ToArray()).view(2, 20);
        using (NewDisposeScope())
            _ = lazy.At(positions); // grows the tables from 3 rows to 40
        Assert.True(lazy.TabulatedPositions >= 40);
        var (cos, signedSin) = lazy.At(positions);
        var (fullCos, fullSignedSin) = full.At(positions);
        Assert.True(cos.eq(fullCos).all().item<bool>() && signedSin.eq(fullSignedSin).all().item<bool>());
    }

    public static TheoryData<string> EntryPoints => new(Cases.Keys);

    [Theory, MemberData(nameof(EntryPoints))]
    public void An_entry_point_makes_no_tensor_outside_a_scope(string entryPoint)
    {
        var act = Cases[entryPoint](this);
        act(); // once first: lazily built state (tables, kernels' buffers) is built outside the measured call too
        long outside = CreatedOutsideAnyScope(act);
        Assert.True(outside == 0, $"{entryPoint}: {outside} tensor(s) created outside any DisposeScope");
    }

    /// <summary>A session's life: prefill, step, siblings, commit, a row joins, rows leave, step (inputs made beforehand).</summary>
    static Action Decode(CausalLM lm)
    {
        int[][] prompts = [[1, 5, 9], [3, 7]];
        var candidates = tensor(new long[] { 4, 6, 8, 10, 11, 12 }, [2, 3]);
        var step = tensor(new long[] { 4, 5 });
        var tokens = tensor(new long[] { 13, 14, 15, 16 }, [2, 2]);
        return () =>
        {
            using var _ = no_grad();
            using var session = new BatchSession(lm.Backbone, 2, initialCapacity: 4);
            lm.LogitsFromHidden(session.Prefill(prompts));
            lm.LogitsFromHidden(session.Step(step));
            session.Siblings(candidates);
            session.CommitSibling([1, 2]);
            session.Append(tokens);
            session.AddRows([[1, 2, 3, 4]], 16);
            session.SelectRows([0, 2]);
            lm.LogitsFromHidden(session.Step(step));
        };
    }

    static readonly long[] Ids = [1, 5, 9, 3, 7, 4, 11, 2, 6, 8, 10, 12];

    static (Tensor Ids, Tensor Valid) Batch(int vocab)
    {
        var ids = tensor(Ids.Select(i => i % vocab).ToArray(), [2, 6]);
        var valid = tensor(new[] { true, true, true, true, true, true, true, true, true, true, false, false }, [2, 6]);
        return (ids, valid);
    }

    static ModelConfig Family(string name) => name switch
    {
        "llama" => TinyModels.LlamaConfig(),
        "qwen2" => TinyModels.Qwen2Config(),
        "qwen3" => TinyModels.LlamaConfig() with { ModelType = "qwen3", QkNorm = true, HeadDim = 16, AttentionBias = true, AttentionOutputBias = true },
        "mistral-window" => TinyModels.LlamaConfig() with { ModelType = "mistral", SlidingWindow = 3 },
        "gpt2" => TinyModels.Gpt2Config(),
        _ => ModelConfig.FromHuggingFaceJson(FamilyJson(name), "config.json"),
    };

    static JsonObject FamilyJson(string name) => name switch
    {
        "gemma2" => new JsonObject
        {
            ["model_type"] = "gemma2", ["vocab_size"] = 40, ["hidden_size"] = 32, ["intermediate_size"] = 48, ["num_hidden_layers"] = 2,
            ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["head_dim"] = 12, ["max_position_embeddings"] = 96,
            ["rms_norm_eps"] = 1e-6, ["query_pre_attn_scalar"] = 20.0, ["sliding_window"] = 4, ["final_logit_softcapping"] = 3.0,
            ["attn_logit_softcapping"] = 2.0, ["layer_types"] = new JsonArray("sliding_attention", "full_attention"),
            ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 0,
        },
        "gemma3" => new JsonObject
        {
            ["model_type"] = "gemma3_text", ["vocab_size"] = 40, ["hidden_size"] = 32, ["intermediate_size"] = 48, ["num_hidden_layers"] = 2,
            ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["head_dim"] = 12, ["max_position_embeddings"] = 96,
            ["rms_norm_eps"] = 1e-6, ["query_pre_attn_scalar"] = 20.0, ["sliding_window"] = 4, ["sliding_window_pattern"] = 2,
            ["rope_local_base_freq"] = 70.0, ["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 2.0 },
            ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 0,
        },
        "phi3" => new JsonObject
        {
            ["model_type"] = "phi3", ["vocab_size"] = 40, ["hidden_size"] = 48, ["intermediate_size"] = 40,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 6, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 64,
            ["original_max_position_embeddings"] = 8, ["partial_rotary_factor"] = 0.5, ["sliding_window"] = 6,
            ["rope_scaling"] = new JsonObject { ["type"] = "longrope", ["short_factor"] = new JsonArray(1.0, 1.5), ["long_factor"] = new JsonArray(2.0, 5.0) },
            ["rms_norm_eps"] = 1e-5, ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 2,
        },
        "gpt_neox" => new JsonObject
        {
            ["model_type"] = "gpt_neox", ["vocab_size"] = 40, ["hidden_size"] = 48, ["intermediate_size"] = 72,
            ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["max_position_embeddings"] = 64, ["layer_norm_eps"] = 1e-5,
            ["rotary_pct"] = 0.5, ["use_parallel_residual"] = true, ["hidden_act"] = "gelu",
            ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        },
        _ => throw new ArgumentException(name),
    };

    static readonly string[] Families = ["llama", "qwen2", "qwen3", "mistral-window", "gemma2", "gemma3", "phi3", "gpt_neox", "gpt2"];

    static IMethodOptions Method(string name) => DecodingMethods.Parse(name).Options(new MethodSettings { K = 4, W = 1.0, N = 2, TargetReward = name == "cards" ? 0.5 : null });

    static Dictionary<string, Func<DisposeScopeTests, Action>> Cases { get; } = BuildCases();

    static Dictionary<string, Func<DisposeScopeTests, Action>> BuildCases()
    {
        var cases = new Dictionary<string, Func<DisposeScopeTests, Action>>();
        foreach (var family in Families)
        {
            cases[$"CausalLM.Logits {family}"] = _ =>
            {
                var config = Family(family);
                var lm = TinyModels.RandomLM(config, seed: 3);
                var (ids, valid) = Batch(config.VocabSize);
                return () => lm.Logits(ids, valid);
            };
            cases[$"BatchSession {family}"] = _ => Decode(TinyModels.RandomLM(Family(family), seed: 3));
            cases[$"TransformerBackbone.Forward, ForwardPadded {family}"] = _ =>
            {
                var config = Family(family);
                var lm = TinyModels.RandomLM(config, seed: 3);
                var (ids, valid) = Batch(config.VocabSize);
                var (positions, mask) = (AttentionMasks.Positions(null, valid), AttentionMasks.Causal(null, valid));
                return () =>
                {
                    lm.Backbone.Forward(ids, positions, mask, null);
                    lm.Backbone.ForwardPadded(ids, valid);
                };
            };
        }
        cases["StateDict.Snapshot, Load"] = _ =>
        {
            var lm = TinyModels.RandomLM(TinyModels.LlamaConfig(), seed: 3);
            ColumnMajor.Apply(lm); // the snapshot's contiguous copies of column-major weights too
            var target = TinyModels.RandomLM(TinyModels.LlamaConfig(), seed: 4);
            var float64 = lm.StateDictForSaving().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float64)); // Load converts dtypes
            return () =>
            {
                lm.StateDictForSaving();
                StateDict.Load(target, float64, "test");
            };
        };
        cases["RewardModel.PrefixRewards, SequenceRewards"] = _ =>
        {
            var rm = TinyModels.RandomRM(TinyModels.LlamaConfig(), seed: 5);
            var (ids, valid) = Batch(61);
            return () =>
            {
                rm.PrefixRewards(ids, valid);
                rm.SequenceRewards(ids, valid);
            };
        };
        foreach (var encoder in new[] { "bert", "roberta", "distilbert", "deberta" })
            cases[$"EncoderRewardModel {encoder}"] = test =>
            {
                string path = TinyEncoders.Write(test.dir.File(encoder), EncoderReferenceTests.ConfigOf(encoder), seed: 11);
                var rm = EncoderRewardModel.Load(path, rewardLabel: encoder == "distilbert" ? null : "1");
                var texts = EncoderReferenceTests.Texts.Take(3).ToList();
                var encoding = rm.Encode(texts[0].Prompt, texts[0].Response);
                var ids = tensor(encoding.Ids.Select(i => (long)i).ToArray()).unsqueeze(0);
                var valid = ones_like(ids, dtype: ScalarType.Bool);
                return () =>
                {
                    rm.Score(texts);
                    rm.SequenceRewards(ids, valid);
                };
            };
        cases["BradleyTerryLoss"] = _ =>
        {
            var chosen = randn(5, requires_grad: true);
            var rejected = randn(5);
            var margins = randn(5);
            return () => BradleyTerryLoss.Compute(chosen, rejected, margins, 0.01).Loss.backward();
        };
        cases["DpoLoss"] = _ =>
        {
            var p = randn(4, requires_grad: true);
            var (r, referenceChosen, referenceRejected) = (randn(4), randn(4), randn(4));
            return () => DpoLoss.Compute(p, r, referenceChosen, referenceRejected, 0.1).Loss.backward();
        };
        cases["DpoLogProbs, GenArmLoss"] = _ =>
        {
            var policy = DpoTestData.Policy(seed: 3);
            var pairs = DpoTestData.EchoPairs(3, seed: 1);
            return () =>
            {
                DpoLogProbs.Sums(policy, pairs.Select(p => p.PromptIds).ToList(), pairs.Select(p => p.ChosenIds[..p.ChosenLength]).ToList());
                GenArmLoss.Compute(policy, pairs, 0.05, eos: 2).Loss.backward();
            };
        };
        cases["FarmaLoss"] = _ =>
        {
            var rm = new VocabularyRewardModel(DpoTestData.Policy(seed: 5), RewardObjective.Farma);
            var pairs = DpoTestData.EchoPairs(3, seed: 1);
            return () =>
            {
                var loss = FarmaLoss.Compute(rm, pairs);
                using (NewDisposeScope()) loss.BradleyTerry.Plus(loss.MaxConstraint).backward(); // this test's own sum
            };
        };
        cases["PpoLoss, PpoAdvantages"] = _ =>
        {
            var shape = new long[] { 3, 4 };
            var logProbs = randn(shape, requires_grad: true);
            var values = randn(shape, requires_grad: true);
            var mask = ones(shape, dtype: ScalarType.Bool);
            var floatMask = ones(shape);
            var (referenceLogProbs, oldLogProbs, oldValues, scores) = (randn(shape), randn(shape), randn(shape), randn(3));
            var (frozenLogProbs, frozenValues) = (logProbs.detach(), values.detach());
            return () =>
            {
                Tensor advantages, returns;
                using (no_grad())
                {
                    var kl = PpoAdvantages.Kl(frozenLogProbs, referenceLogProbs, mask, PpoKlEstimator.K1);
                    var rewards = PpoAdvantages.Rewards(kl, scores, [4, 3, 2], 0.05);
                    (advantages, returns) = PpoAdvantages.Gae(rewards, frozenValues, floatMask, 1.0, 0.95);
                    advantages = PpoAdvantages.Whiten(advantages, floatMask);
                }
                PpoLoss.Compute(logProbs, oldLogProbs, advantages, values, oldValues, returns, mask, 0.2, 0.2, 0.1).Loss.backward();
            };
        };
        cases["RewardEvaluator"] = _ =>
        {
            var rm = TinyModels.RandomRM(RewardTestData.TinyLlama(), seed: 5);
            var pairs = RewardTestData.RandomPairs(4, vocab: 16, seed: 6);
            return () =>
            {
                RewardEvaluator.Evaluate(rm, pairs);
                RewardEvaluator.PrefixAccuracy(rm, pairs, p => [1, 2]);
                SequenceRewardBatches.Score(rm, [[1, 4, 5], [1, 6]]);
            };
        };
        cases["RewardTrainer.Train"] = _ =>
        {
            var rm = TinyModels.RandomRM(RewardTestData.TinyLlama(), seed: 5);
            var train = RewardTestData.RandomPairs(6, vocab: 16, seed: 5, margins: true);
            var eval = RewardTestData.RandomPairs(2, vocab: 16, seed: 6);
            var options = new RewardTrainingOptions
            {
                Objective = RewardObjective.Partial, CenterRewardsCoefficient = 0.01,
                Loop = new TrainingOptions { LearningRate = 1e-3, BatchSize = 2, GradientAccumulation = 2, MaxSteps = 2, MaxGradNorm = 0.5, LogEvery = 1, EvalEvery = 2 },
            };
            return () => new RewardTrainer(rm, train, eval, options).Train();
        };
        cases["DpoTrainer.Train"] = _ =>
        {
            var policy = DpoTestData.Policy(seed: 11);
            var train = DpoTestData.EchoPairs(6, seed: 1);
            var eval = DpoTestData.EchoPairs(2, seed: 2);
            var options = new DpoTrainingOptions { Beta = 0.1, Loop = new TrainingOptions { LearningRate = 1e-3, BatchSize = 2, MaxSteps = 2, EvalEvery = 2 } };
            return () => new DpoTrainer(policy, train, eval, options).Train();
        };
        cases["DpoTrainer.Train LoRA"] = _ =>
        {
            var policy = DpoTestData.Policy(seed: 11);
            var train = DpoTestData.EchoPairs(6, seed: 1);
            var options = new DpoTrainingOptions { Beta = 0.1, Lora = new LoraOptions { Rank = 2 }, Loop = new TrainingOptions { LearningRate = 1e-3, BatchSize = 2, MaxSteps = 2 } };
            var trainer = new DpoTrainer(policy, train, null, options); // builds the adapters: parameters are outside every scope by design
            return () => trainer.Train();
        };
        foreach (var objective in new[] { RewardObjective.Farma, RewardObjective.Genarm })
            cases[$"VocabularyRewardTrainer.Train {objective}"] = _ =>
            {
                var rm = new VocabularyRewardModel(DpoTestData.Policy(seed: 5), objective);
                var train = DpoTestData.EchoPairs(6, seed: 1);
                var eval = DpoTestData.EchoPairs(2, seed: 2);
                var options = new VocabularyRewardTrainingOptions
                {
                    Objective = objective, Beta = 0.5, Loop = new TrainingOptions { LearningRate = 1e-3, BatchSize = 2, MaxSteps = 2, EvalEvery = 2 },
                };
                return () => new VocabularyRewardTrainer(rm, train, eval, options).Train();
            };
        cases["EncoderRewardTrainer.Train"] = test =>
        {
            string path = TinyEncoders.Write(test.dir.File("bert-train"), TinyEncoders.Bert(), seed: 3);
            var rm = EncoderRewardModel.ForTraining(path, EncoderInput.Pair, 1, null, out _);
            var pairs = Enumerable.Range(0, 4).Select(i => EncoderPreferencePair.Build(rm.EncoderTokenizer,
                new PreferencePair("Once upon a time", " a happy cat.", " a sad dog.", null), new PartialPairOptions { Positions = new PrefixPositions.Stride(2) }, i)).ToList();
            var options = new RewardTrainingOptions
            {
                Objective = RewardObjective.Partial,
                Loop = new TrainingOptions { LearningRate = 1e-3, BatchSize = 2, MaxSteps = 2, EvalEvery = 2 },
            };
            return () => new EncoderRewardTrainer(rm, pairs, pairs, options).Train();
        };
        cases["PpoTrainer.Train"] = _ =>
        {
            var policy = DpoTestData.Policy(seed: 4);
            int[][] prompts = [[1, 3], [1, 5, 6], [1, 7], [1, 9, 10]];
            var options = new PpoTrainingOptions
            {
                KlCoef = 0.05, ResponseLength = 4, Temperature = 1.0, StopAtEos = true,
                Loop = new TrainingOptions { LearningRate = 1e-3, BatchSize = 4, GradientAccumulation = 2, MaxSteps = 1, Seed = 5 },
            };
            var trainer = new PpoTrainer(policy, new CountingScorer(), prompts, options); // builds modules: their parameters are outside every scope by design
            return () => trainer.Train();
        };
        foreach (var method in new[] { "greedy", "topk", "topp", "best-of-n", "args", "pargs", "pargs-g", "cd", "cards" })
            foreach (var engine in new[] { DecodingEngine.Cached, DecodingEngine.Naive })
                cases[$"TextGenerator {method} {engine}"] = _ =>
                {
                    var config = TinyModels.LlamaConfig(40);
                    var lm = TinyModels.RandomLM(config, seed: 7);
                    lm.Tokenizer = new TestCharTokenizer(40);
                    var rm = TinyModels.RandomRM(config, seed: 99);
                    var options = new DecodingOptions { Method = Method(method), MaxNewTokens = 6, Seed = 3, StopAtEos = false, BatchSize = 2, Engine = engine };
                    return () => TextGenerator.Generate(lm, rm, ["abc", "hello"], options);
                };
        foreach (var (method, objective) in new[] { ("farma", RewardObjective.Farma), ("farma-g", RewardObjective.Farma), ("genarm", RewardObjective.Genarm) })
            cases[$"TextGenerator {method}"] = _ =>
            {
                var config = TinyModels.LlamaConfig(40);
                var lm = TinyModels.RandomLM(config, seed: 7);
                lm.Tokenizer = new TestCharTokenizer(40);
                var rmLm = TinyModels.RandomLM(config, seed: 99);
                rmLm.Tokenizer = new TestCharTokenizer(40);
                var rm = new VocabularyRewardModel(rmLm, objective);
                var options = new DecodingOptions { Method = DecodingMethods.Parse(method).Options(new MethodSettings { K = method == "genarm" ? null : 4, W = 1.0 }), MaxNewTokens = 6, Seed = 3, StopAtEos = false, BatchSize = 2 };
                return () => TextGenerator.Generate(lm, rm, ["abc", "hello"], options);
            };
        cases["RewardTrainer.Loss, Forward, Evaluate"] = _ =>
        {
            var rm = TinyModels.RandomRM(RewardTestData.TinyLlama(), seed: 5);
            var pairs = RewardTestData.RandomPairs(4, vocab: 16, seed: 5, margins: true);
            var trainer = new RewardTrainer(rm, pairs, pairs, new RewardTrainingOptions { Objective = RewardObjective.Partial, Loop = new TrainingOptions { BatchSize = 2 } });
            return () =>
            {
                RewardTrainer.Loss(rm, pairs, RewardObjective.Full).Loss.backward();
                trainer.Forward([0, 1]).Loss.backward();
                trainer.Evaluate();
            };
        };
        foreach (bool lora in new[] { false, true })
            cases[$"DpoTrainer.Forward, Evaluate{(lora ? " LoRA" : "")}"] = _ =>
            {
                var pairs = DpoTestData.EchoPairs(4, seed: 1);
                var trainer = new DpoTrainer(DpoTestData.Policy(seed: 11), pairs, pairs, new DpoTrainingOptions
                {
                    Beta = 0.1, Lora = lora ? new LoraOptions { Rank = 2 } : null, Loop = new TrainingOptions { BatchSize = 2 },
                });
                return () =>
                {
                    trainer.Forward([0, 1]).Loss.backward();
                    trainer.Evaluate();
                };
            };
        foreach (var objective in new[] { RewardObjective.Farma, RewardObjective.Genarm })
            cases[$"VocabularyRewardTrainer.Forward, Evaluate {objective}"] = _ =>
            {
                var pairs = DpoTestData.EchoPairs(4, seed: 1);
                var trainer = new VocabularyRewardTrainer(new VocabularyRewardModel(DpoTestData.Policy(seed: 5), objective), pairs, pairs,
                    new VocabularyRewardTrainingOptions { Objective = objective, Loop = new TrainingOptions { BatchSize = 2 } });
                return () =>
                {
                    trainer.Forward([0, 1]).Loss.backward();
                    trainer.Evaluate();
                };
            };
        cases["EncoderRewardTrainer.Loss, Forward, Evaluate"] = test =>
        {
            string path = TinyEncoders.Write(test.dir.File("bert-steps"), TinyEncoders.Bert(), seed: 3);
            var rm = EncoderRewardModel.ForTraining(path, EncoderInput.Text, 1, null, out _);
            var pairs = Enumerable.Range(0, 2).Select(i => EncoderPreferencePair.Build(rm.EncoderTokenizer,
                new PreferencePair("The story", " a nice cat.", " an awful dog.", 0.5), new PartialPairOptions { Positions = new PrefixPositions.All() }, i)).ToList();
            var trainer = new EncoderRewardTrainer(rm, pairs, pairs, new RewardTrainingOptions { Objective = RewardObjective.Partial, Loop = new TrainingOptions { BatchSize = 2 } });
            return () =>
            {
                EncoderRewardTrainer.Loss(rm, pairs, RewardObjective.Full).Loss.backward();
                trainer.Forward([0, 1]).Loss.backward();
                trainer.Evaluate();
            };
        };
        cases["PpoTrainer.Rollout, Loss"] = _ =>
        {
            var options = new PpoTrainingOptions
            {
                KlCoef = 0.05, ResponseLength = 4, StopAtEos = false,
                Loop = new TrainingOptions { LearningRate = 1e-3, BatchSize = 2, GradientAccumulation = 2, MaxSteps = 1, Seed = 5 },
            };
            var trainer = new PpoTrainer(DpoTestData.Policy(seed: 4), new CountingScorer(), [[1, 3], [1, 5, 6], [1, 7], [1, 9, 10]], options);
            return () =>
            {
                var rollout = trainer.Rollout(0);
                trainer.Loss(rollout, [0, 2]).Loss.backward();
            };
        };
        cases["Stored-precision CausalLM and BatchSession"] = _ =>
        {
            var config = StoredPrecisionTests.Config(qwen2: false);
            var lm = CausalLM.FromStored(config, StoredPrecisionTests.Store(TinyModels.RandomLM(config, seed: 3), Pargs.Weights.WeightFormat.Q8_0), "test");
            var (ids, valid) = Batch(config.VocabSize);
            var decode = Decode(lm);
            return () =>
            {
                lm.Logits(ids, valid);
                decode();
            };
        };
        cases["Stored-precision RewardModel"] = test =>
        {
            string path = test.dir.File("rm-bf16");
            using (var rm = TinyModels.RandomRM(TinyModels.LlamaConfig(), seed: 5)) rm.Save(path, RewardObjective.Full, Pargs.Checkpoints.StoredType.BF16);
            var stored = RewardModel.LoadForInference(path, requireTokenizer: false);
            Assert.NotNull(stored.StoredWeights);
            var (ids, valid) = Batch(61);
            return () => stored.SequenceRewards(ids, valid);
        };
        cases["BatchSession float16 KV cache"] = _ =>
        {
            var lm = TinyModels.RandomLM(TinyModels.LlamaConfig(), seed: 3);
            lm.Backbone.KvCacheType = KvCacheType.F16;
            return Decode(lm);
        };
        foreach (var method in new[] { "pargs", "best-of-n" })
            foreach (var engine in new[] { DecodingEngine.Cached, DecodingEngine.Naive })
            {
                cases[$"TextGenerator {method} {engine}, another tokenizer"] = _ =>
                {
                    var lm = CrossTokenizerModels.Lm(CrossTokenizerModels.SentencePiece, CrossTokenizerModels.Favoured(CrossTokenizerModels.SentencePiece), seed: 17);
                    var rm = CrossTokenizerModels.Rm(CrossTokenizerModels.Gpt2, seed: 23, "tiny-rm");
                    var options = new DecodingOptions { Method = Method(method), MaxNewTokens = 5, Seed = 3, StopAtEos = false, BatchSize = 2, Engine = engine };
                    return () => TextGenerator.Generate(lm, rm, ["café au lait", "The dog"], options);
                };
                cases[$"TextGenerator {method} {engine}, an encoder reward model"] = test =>
                {
                    var config = TinyEncoders.Bert();
                    config[EncoderInputs.ConfigField] = "pair";
                    var rm = EncoderRewardModel.Load(TinyEncoders.Write(test.dir.File("bert-guide"), config, seed: 9), "POSITIVE");
                    var lm = CausalLM.Load(TestPaths.Stories260KGguf);
                    var options = new DecodingOptions { Method = Method(method), MaxNewTokens = 5, Seed = 3, StopAtEos = false, BatchSize = 2, Engine = engine };
                    return () => TextGenerator.Generate(lm, rm, ["Once upon a time", "Tim was sad because"], options);
                };
            }
        // The engines' sessions and the scorers they open, called step by step as a server's loop calls them (outside the
        // decoder's per-step scope): every kind of reward model on the cached and the recompute engine.
        foreach (var engineKind in new[] { "cached", "prefix-cached", "recompute" })
            foreach (var rmKind in new[] { "scalar", "scalar-reference", "farma", "genarm", "another-tokenizer", "encoder" })
                cases[$"Engine session and scorer, {engineKind}, {rmKind}"] = test =>
                {
                    CausalLM lm;
                    IRewardModel rm;
                    switch (rmKind)
                    {
                        case "another-tokenizer":
                            lm = CrossTokenizerModels.Lm(CrossTokenizerModels.SentencePiece, CrossTokenizerModels.Favoured(CrossTokenizerModels.SentencePiece), seed: 17);
                            rm = CrossTokenizerModels.Rm(CrossTokenizerModels.Gpt2, seed: 23, "tiny-rm");
                            break;
                        case "encoder":
                            var config = TinyEncoders.Bert();
                            config[EncoderInputs.ConfigField] = "pair";
                            rm = EncoderRewardModel.Load(TinyEncoders.Write(test.dir.File("bert-scorer"), config, seed: 9), "POSITIVE");
                            lm = CausalLM.Load(TestPaths.Stories260KGguf);
                            break;
                        default:
                            var llama = TinyModels.LlamaConfig(40);
                            lm = TinyModels.RandomLM(llama, seed: 7);
                            lm.Tokenizer = new TestCharTokenizer(40);
                            var rmLm = TinyModels.RandomLM(llama, seed: 99);
                            rmLm.Tokenizer = lm.Tokenizer;
                            rm = rmKind switch
                            {
                                "farma" => new VocabularyRewardModel(rmLm, RewardObjective.Farma),
                                "genarm" => new VocabularyRewardModel(rmLm, RewardObjective.Genarm),
                                _ => TinyModels.RandomRM(llama, seed: 99),
                            };
                            break;
                    }
                    var engine = engineKind switch
                    {
                        "recompute" => Pargs.Engine.LanguageModelEngine.Recompute(lm),
                        "prefix-cached" => Pargs.Engine.LanguageModelEngine.Cached(lm, new Pargs.Engine.PrefixCache(16 << 20)),
                        _ => Pargs.Engine.LanguageModelEngine.Cached(lm),
                    };
                    var tokenizer = lm.Tokenizer!;
                    int[][] prompts = [tokenizer.Encode(rmKind == "encoder" ? "Once upon" : "hello", addBos: true), tokenizer.Encode(rmKind == "encoder" ? "The dog" : "abc", addBos: true)];
                    long[] firstIds = [.. prompts.Select(p => (long)p[^1])];
                    var candidates = tensor(prompts.SelectMany(p => p[^2..]).Select(i => (long)i).ToArray(), [2, 2]);
                    var counts = new CandidateScoringCounts();
                    return () =>
                    {
                        using var _ = no_grad();
                        using var session = engine.OpenSession(32);
                        using var scorer = rmKind == "scalar-reference" ? rm.OpenReferenceScorer(lm.Info, counts) : engine.OpenScorer(rm, 2, 32, counts);
                        session.AddRows(prompts);
                        scorer.AddRows(prompts);
                        scorer.Score(candidates, [true, true]);
                        scorer.Commit([1, 0]);
                        session.Append(firstIds);
                        session.KeepRows([1]);
                        scorer.KeepRows([1]);
                        session.AddRows([prompts[0]]);
                        scorer.AddRows([prompts[0]]);
                        scorer.Score(candidates, [true, true]);
                        scorer.Commit([0, 1]);
                        session.Append(firstIds);
                        session.KeepRows([]);
                    };
                };
        foreach (var method in new[] { "pargs", "topk" })
            foreach (var engineKind in new[] { "cached", "prefix-cached", "recompute" })
                cases[$"ContinuousDecoder {method} {engineKind}"] = _ =>
                {
                    var config = TinyModels.LlamaConfig(40);
                    var lm = TinyModels.RandomLM(config, seed: 3);
                    lm.Tokenizer = new TestCharTokenizer(40);
                    var rm = TinyModels.RandomRM(config, seed: 5);
                    var options = (ITokenwiseOptions)Method(method);
                    var engine = engineKind switch
                    {
                        "recompute" => Pargs.Engine.LanguageModelEngine.Recompute(lm),
                        "prefix-cached" => Pargs.Engine.LanguageModelEngine.Cached(lm, new Pargs.Engine.PrefixCache(16 << 20)),
                        _ => Pargs.Engine.LanguageModelEngine.Cached(lm),
                    };
                    var tokenizer = lm.Tokenizer;
                    string[] prompts = ["hello", "abc", "decoding"];
                    return () =>
                    {
                        using var _ = no_grad();
                        using var decoder = new ContinuousDecoder(engine, rm, options, capacity: 32);
                        var rows = prompts.Select((p, i) => new RowProgress(new DecodingContext(tokenizer, null, false, [], 4 + i), i, 0, tokenizer.Encode(p, addBos: true))).ToArray();
                        decoder.Join(tokenizer.Encode(prompts[0], addBos: true), rows[0], DecodingSteps.RowRandom(4, 0, 0));
                        decoder.Join(tokenizer.Encode(prompts[1], addBos: true), rows[1], DecodingSteps.RowRandom(4, 1, 0));
                        decoder.Step();
                        decoder.Join(tokenizer.Encode(prompts[2], addBos: true), rows[2], DecodingSteps.RowRandom(4, 2, 0));
                        decoder.Step();
                        decoder.Cancel(rows[1]);
                        for (int step = 0; step < 10 && decoder.Count > 0; step++) decoder.Step();
                    };
                };
        return cases;
    }

    sealed class CountingScorer : IPpoScorer
    {
        public double[] Score(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses) => responses.Select(r => r.Count(t => t % 2 == 0) / (double)r.Length).ToArray();
    }
}
