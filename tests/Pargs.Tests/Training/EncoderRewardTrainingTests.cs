using System.Text;
using System.Text.Json.Nodes;
using Pargs.Data;
using Pargs.Models.Encoders;
using Pargs.Rewards;
using Pargs.Tests.Models.Encoders;
using Pargs.Tests.Tokenizers;
using Pargs.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Pargs.Tests.Training;

/// <summary>
/// train-rm with an encoder backbone: prefix cuts and materialization counts, the Bradley–Terry loss and its gradients
/// against hand computations, exact resume, and a trained model that ranks a separable held-out set.
/// </summary>
public class EncoderRewardTrainingTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    string Bert(string name = "bert", int seed = 3) => TinyEncoders.Write(_dir.File(name), TinyEncoders.Bert(), seed);

    static EncoderPreferencePair Pair(EncoderRewardModel rm, string prompt, string chosen, string rejected, PrefixPositions? positions = null, double? margin = null, int index = 0)
        => EncoderPreferencePair.Build(rm.EncoderTokenizer, new PreferencePair(prompt, chosen, rejected, margin), new PartialPairOptions { Positions = positions ?? new PrefixPositions.All() }, index);

    [Theory]
    [InlineData("roberta")]
    [InlineData("deberta")]
    [InlineData("bert")]
    public void Prefix_cuts_end_where_the_first_i_tokens_end(string fixture)
    {
        var tokenizer = TokenizerGoldens.Load(fixture);
        string[] texts = [" there was a little girl named Lily.", "Mix flour, water, yeast and salt, let it rise.", " résumé — 12345 😀 ok", "  two  spaces\n", "!"];
        foreach (var text in texts)
        {
            var ids = tokenizer.Encode(text, null, addSpecialTokens: false).Ids;
            var cuts = EncoderPrefixCuts.Of(tokenizer, text);
            Assert.Equal(ids.Length, cuts.Length);
            Assert.Equal(text.Length, cuts[^1]);
            for (int i = 1; i < cuts.Length; i++) Assert.True(cuts[i] >= cuts[i - 1], $"{fixture} \"{text}\": cut {i} goes back");
            for (int i = 1; i < ids.Length; i++)
            {
                // The surface text of tokens 1..i (as the tokenizer spells them) against the cut text, whitespace aside;
                // BERT's normalizer lowercases and strips accents, so it is compared through the same normalization.
                string surface = Encoding.UTF8.GetString(ids[..i].SelectMany(tokenizer.TokenBytes).ToArray());
                string cut = text[..cuts[i - 1]];
                if (fixture == "bert") cut = string.Concat(tokenizer.Encode(cut, null, false).Ids.SelectMany(tokenizer.TokenBytes).Select(b => (char)b));
                if (fixture == "bert") surface = string.Concat(ids[..i].SelectMany(tokenizer.TokenBytes).Select(b => (char)b));
                if (surface.Contains('\uFFFD')) continue; // an unfinished character: the cut waits for it
                int unknown = ids[..i].Count(id => tokenizer.IsSpecial(id) && tokenizer.TokenBytes(id).Length == 0);
                if (unknown == 0 || fixture == "bert") Assert.Equal(Visible(surface), Visible(cut));
                else Assert.Equal(Visible(surface).EnumerateRunes().Count() + unknown, Visible(cut).EnumerateRunes().Count()); // [UNK] covers one character
            }
        }
    }

    static string Visible(string s) => string.Concat(s.Where(c => !char.IsWhiteSpace(c)));

    [Fact]
    public void Prefixes_are_materialized_once_per_distinct_input_with_stride_and_sample_as_counted_by_hand()
    {
        using var rm = EncoderRewardModel.ForTraining(Bert(), EncoderInput.Text, seed: 1, null, out string? note);
        Assert.NotNull(note);
        // "a b c d e" is 5 tokens, "a b x" 3: L = 5, the rejected side's prefixes 4 and 5 are its whole text.
        var all = Pair(rm, "Q:", " a b c d e", " a b x");
        Assert.Equal(5, all.ResponseLength);
        Assert.Equal([" a", " a b", " a b x", " a b x", " a b x"], Enumerable.Range(1, 5).Select(all.RejectedPrefix));
        Assert.Equal(" a b c d", all.ChosenPrefix(4));
        // All: 5 comparisons; rows: 5 chosen prefixes + " a b x" (" a" and " a b" are shared with the chosen side).
        var batch = EncoderComparisonBatch.Build(rm, [all], p => p.PrefixLengths);
        Assert.Equal((5, 6), (batch.Comparisons, batch.Rows.Count));
        // Stride 2: i = 2, 4, 5 (L is always kept); rows " a b", " a b c d", " a b c d e", " a b x".
        var stride = Pair(rm, "Q:", " a b c d e", " a b x", new PrefixPositions.Stride(2));
        Assert.Equal([2, 4, 5], stride.PrefixLengths);
        batch = EncoderComparisonBatch.Build(rm, [stride], p => p.PrefixLengths);
        Assert.Equal((3, 4), (batch.Comparisons, batch.Rows.Count));
        // Sample 2 of 5, seeded per pair: 2 comparisons, the same for the same seed and index.
        var sample = Pair(rm, "Q:", " a b c d e", " a b x", new PrefixPositions.RandomSubset(2, Seed: 9), index: 4);
        Assert.Equal(2, sample.PrefixLengths.Length);
        Assert.Equal(sample.PrefixLengths, Pair(rm, "Q:", " a b c d e", " a b x", new PrefixPositions.RandomSubset(2, Seed: 9), index: 4).PrefixLengths);
        Assert.Equal(2, EncoderComparisonBatch.Build(rm, [sample], p => p.PrefixLengths).Comparisons);
        // Full: the whole responses only, two rows.
        batch = EncoderComparisonBatch.Build(rm, [all], p => EncoderRewardTrainer.LossPrefixes(p, RewardObjective.Full));
        Assert.Equal((1, 2), (batch.Comparisons, batch.Rows.Count));
        // Two pairs in one batch: nothing is shared across different prompts.
        batch = EncoderComparisonBatch.Build(rm, [stride, Pair(rm, "P:", " a b", " c", new PrefixPositions.Stride(2))], p => p.PrefixLengths);
        Assert.Equal((3 + 1, 4 + 2), (batch.Comparisons, batch.Rows.Count));
    }

    [Theory]
    [InlineData(RewardObjective.Partial, "text")]
    [InlineData(RewardObjective.Partial, "pair")]
    [InlineData(RewardObjective.Full, "pair")]
    public void The_loss_is_the_Bradley_Terry_loss_computed_by_hand_from_each_prefix_scored_alone(RewardObjective objective, string input)
    {
        using var rm = EncoderRewardModel.ForTraining(Bert(), EncoderInputs.Parse(input)!.Value, seed: 4, null, out _);
        var pairs = new[]
        {
            Pair(rm, "Once upon a time", " the cat was happy and nice.", " the dog was sad.", margin: 0.5),
            Pair(rm, "The story", " was great", " was awful and bad, the end.", new PrefixPositions.Stride(3)),
        };
        const double center = 0.05;
        double expected = 0;
        int n = 0;
        foreach (var pair in pairs)
            foreach (int i in EncoderRewardTrainer.LossPrefixes(pair, objective))
            {
                // Each prefix scored by the decoding path (its own encoding, no gradient), then the loss by hand.
                double w = rm.Score([(pair.Prompt, pair.ChosenPrefix(i))])[0], l = rm.Score([(pair.Prompt, pair.RejectedPrefix(i))])[0];
                double d = w - l - (pair.Margin ?? 0);
                expected += Math.Log(1 + Math.Exp(-d)) + center * (w + l) * (w + l);
                n++;
            }
        expected /= n;
        var result = EncoderRewardTrainer.Loss(rm, pairs, objective, center);
        Assert.Equal(expected, result.Loss.item<float>(), 5);
        Assert.Equal(n, result.Comparisons);
    }

    [Fact]
    public void Gradients_match_finite_differences()
    {
        using var rm = EncoderRewardModel.ForTraining(Bert(), EncoderInput.Pair, seed: 4, null, out _);
        rm.Classifier.to(ScalarType.Float64);
        var pairs = new[]
        {
            Pair(rm, "Once upon a time", " the cat was happy.", " the dog was sad and bad.", margin: 0.3),
            Pair(rm, "Hi", " good", " bad"),
        };
        double Loss() => EncoderRewardTrainer.Loss(rm, pairs, RewardObjective.Partial, 0.1).Loss.item<double>();
        rm.Classifier.zero_grad();
        EncoderRewardTrainer.Loss(rm, pairs, RewardObjective.Partial, 0.1).Loss.backward();
        var parameters = rm.Classifier.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        int goodId = rm.EncoderTokenizer.Encode("good", null, false).Ids[0];
        (string Name, long[] Index)[] probes =
        [
            ("classifier.weight", [0, 3]), ("classifier.bias", [0]), ("bert.pooler.dense.weight", [5, 7]),
            ("bert.encoder.layer.0.attention.self.query.weight", [2, 5]), ("bert.encoder.layer.1.output.LayerNorm.weight", [9]),
            ("bert.embeddings.word_embeddings.weight", [goodId, 1]), ("bert.embeddings.token_type_embeddings.weight", [1, 4]),
        ];
        foreach (var (name, index) in probes)
        {
            var p = parameters[name];
            double analytic = p.grad!.to(ScalarType.Float64).data<double>()[Flat(p, index)];
            const double eps = 1e-6;
            double Shifted(double by)
            {
                using Scalar plus = by.ToScalar(), minus = (-by).ToScalar(), one = 1.ToScalar(); // held: see Pargs.Models.HeldScalars
                using (no_grad()) p[index.Select(i => TensorIndex.Single(i)).ToArray()].add_(plus, one);
                using var _ = no_grad();
                double loss = Loss();
                using (no_grad()) p[index.Select(i => TensorIndex.Single(i)).ToArray()].add_(minus, one);
                return loss;
            }
            double numeric = (Shifted(eps) - Shifted(-eps)) / (2 * eps);
            Assert.True(Math.Abs(analytic - numeric) <= 1e-6 + 1e-5 * Math.Abs(numeric), $"{name}[{string.Join(",", index)}]: analytic {analytic}, numeric {numeric}");
            Assert.NotEqual(0.0, analytic);
        }
    }

    static long Flat(Tensor t, long[] index)
    {
        long flat = 0;
        for (int d = 0; d < index.Length; d++) flat = flat * t.shape[d] + index[d];
        return flat;
    }

    static RewardTrainingOptions Options(RewardObjective objective, string? output, int steps, int? checkpointEvery = null, bool resume = false) => new()
    {
        Objective = objective,
        CenterRewardsCoefficient = 0.01,
        Loop = new TrainingOptions
        {
            LearningRate = 3e-3, BatchSize = 2, GradientAccumulation = 2, MaxSteps = steps, WarmupSteps = 1, Schedule = Schedule.Cosine,
            WeightDecay = 0.01, MaxGradNorm = 1.0, Seed = 5, LogEvery = 1, EvalEvery = 3, CheckpointEvery = checkpointEvery,
            OutputDir = output, Resume = resume, Threads = 1,
        },
    };

    static readonly string[] Good = ["the cat was happy", "a nice story", "great and good", "we love the dog", "happy happy", "good cat"];
    static readonly string[] Bad = ["the dog was sad", "an awful story", "bad and sad", "we hate the cat", "sad sad", "awful dog"];

    /// <summary>Separable pairs: the chosen response is made of happy words, the rejected of sad ones.</summary>
    static List<EncoderPreferencePair> SeparablePairs(EncoderRewardModel rm, int count, int seed, PrefixPositions positions)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => Pair(rm, i % 2 == 0 ? "Once upon a time" : "The story",
            " " + Good[random.Next(Good.Length)] + ".", " " + Bad[random.Next(Bad.Length)] + ".", positions, index: i)).ToList();
    }

    sealed class StopAt(int step, CancellationTokenSource kill) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) { if (value.Step == step) kill.Cancel(); }
    }

    [Fact]
    public void Resuming_from_a_midway_checkpoint_reaches_the_same_weights_as_an_uninterrupted_run()
    {
        string start = Bert("start", seed: 6);
        const int steps = 6;
        Dictionary<string, Tensor> Run(string output, int headSeed, int? killAfter, bool resume, out TrainingResult? result)
        {
            var rm = EncoderRewardModel.ForTraining(start, EncoderInput.Pair, headSeed, null, out _);
            var train = SeparablePairs(rm, 7, seed: 1, new PrefixPositions.Stride(2));
            var eval = SeparablePairs(rm, 3, seed: 2, new PrefixPositions.Stride(2));
            var trainer = new EncoderRewardTrainer(rm, train, eval, Options(RewardObjective.Partial, output, steps, checkpointEvery: 3, resume));
            using var kill = new CancellationTokenSource();
            result = null;
            if (killAfter is { } k) Assert.Throws<OperationCanceledException>(() => trainer.Train(new StopAt(k, kill), kill.Token));
            else result = trainer.Train();
            var weights = rm.Classifier.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
            rm.Dispose();
            return weights;
        }
        var uninterrupted = Run(_dir.File("a"), headSeed: 11, killAfter: null, resume: false, out _);
        string run = _dir.File("b");
        Run(run, headSeed: 11, killAfter: 4, resume: false, out _);
        Assert.True(Directory.Exists(Path.Combine(run, "checkpoint-3")));
        Assert.False(Directory.Exists(Path.Combine(run, "checkpoint-6")));
        // A fresh process: the head drawn from another seed, the weights and optimizer restored from checkpoint-3.
        var resumed = Run(run, headSeed: 99, killAfter: null, resume: true, out var result);
        Assert.EndsWith("checkpoint-3", result!.ResumedFrom);
        foreach (var (name, expected) in uninterrupted)
        {
            double diff = (resumed[name] - expected).abs().max().item<float>();
            Assert.True(diff <= 1e-6, $"{name} differs by {diff}");
        }
        var a = File.ReadAllLines(Path.Combine(_dir.File("a"), TrainingLoop.MetricsFile));
        Assert.Equal(a, File.ReadAllLines(Path.Combine(run, TrainingLoop.MetricsFile)));
        Assert.Contains("\"eval_accuracy_by_prefix/", a[^1]);
        Assert.Contains("\"eval_loss\"", a[^1]);
        Assert.Contains("\"mean_reward\"", a[0]);

        // Checkpoints are encoder reward-model folders; resuming with another objective or input is refused.
        using (var checkpoint = EncoderRewardModel.Load(Path.Combine(run, "checkpoint-6")))
            Assert.Equal((EncoderInput.Pair, 1), (checkpoint.Input, checkpoint.Label.NumLabels));
        using var other = EncoderRewardModel.ForTraining(start, EncoderInput.Text, 1, null, out _);
        var pairs = SeparablePairs(other, 3, seed: 1, new PrefixPositions.All());
        var wrongInput = Assert.Throws<PargsException>(() => new EncoderRewardTrainer(other, pairs, null, Options(RewardObjective.Partial, run, steps, 3, resume: true)).Train());
        Assert.Contains("trained with --input pair", wrongInput.Message);
        var wrongObjective = Assert.Throws<PargsException>(() => new EncoderRewardTrainer(other, pairs, null, Options(RewardObjective.Full, run, steps, 3, resume: true)).Train());
        Assert.Contains("trained with --objective partial", wrongObjective.Message);
    }

    [Theory]
    [InlineData("bert", RewardObjective.Partial)]
    [InlineData("deberta-v3", RewardObjective.Full)]
    public void A_trained_encoder_reward_model_prefers_the_chosen_response_on_held_out_pairs(string family, RewardObjective objective)
    {
        string start = TinyEncoders.Write(_dir.File(family), EncoderReferenceTests.ConfigOf(family), seed: 12);
        using var rm = EncoderRewardModel.ForTraining(start, EncoderInput.Text, seed: 2, null, out string? note);
        Assert.Equal(family == "bert", note is not null); // the tiny DeBERTa-v3 has one label already: its head is kept
        var train = SeparablePairs(rm, 24, seed: 3, new PrefixPositions.All());
        var held = SeparablePairs(rm, 12, seed: 4, new PrefixPositions.All());
        var before = EncoderRewardTrainer.Evaluate(rm, held, objective);
        var options = Options(objective, _dir.File("out-" + family), 30) with { };
        options = options with { Loop = options.Loop with { EvalEvery = null, Schedule = Schedule.Constant, GradientAccumulation = 1, BatchSize = 4 } };
        new EncoderRewardTrainer(rm, train, null, options).Train();
        var after = EncoderRewardTrainer.Evaluate(rm, held, objective);
        Assert.True(after["loss"] < before["loss"] * 0.5, $"held-out loss {before["loss"]} → {after["loss"]}");
        Assert.Equal(1.0, after["accuracy"]);

        // Saved and read back as decoding reads it: whole chosen responses score above rejected ones.
        string saved = _dir.File("saved-" + family);
        rm.Save(saved, objective);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(saved, "config.json")))!;
        Assert.Equal(objective.ToConfigValue(), (string)config[RewardModel.ObjectiveField]!);
        Assert.Equal("text", (string)config[EncoderInputs.ConfigField]!);
        Assert.Single(config["id2label"]!.AsObject());
        using var loaded = EncoderRewardModel.Load(saved);
        foreach (var pair in held)
        {
            var scores = loaded.Score([(pair.Prompt, pair.Chosen), (pair.Prompt, pair.Rejected)]);
            Assert.True(scores[0] > scores[1], $"\"{pair.Chosen}\" {scores[0]} vs \"{pair.Rejected}\" {scores[1]}");
        }
    }

    [Fact]
    public void A_micro_batch_whose_materialized_prefixes_would_exhaust_memory_is_refused_with_the_settings_to_lower()
    {
        using var rm = EncoderRewardModel.ForTraining(Bert(), EncoderInput.Text, seed: 1, null, out _);
        var pairs = SeparablePairs(rm, 4, seed: 1, new PrefixPositions.All());
        var batch = EncoderComparisonBatch.Build(rm, pairs, p => p.PrefixLengths);
        long bytes = batch.EstimatedActivationBytes(rm.Classifier.Config);
        var options = Options(RewardObjective.Partial, null, 1);
        options = options with { Loop = options.Loop with { BatchSize = 4, GradientAccumulation = 1, EvalEvery = null } };
        var trainer = new EncoderRewardTrainer(rm, pairs, null, options) { MaxActivationBytes = bytes - 1 };
        var error = Assert.Throws<PargsException>(() => trainer.Train());
        Assert.Contains($"a micro-batch of 4 pairs materializes {batch.Rows.Count} prefix inputs", error.Message);
        Assert.Contains("--prefix-stride", error.Message);
        Assert.Equal(1, new EncoderRewardTrainer(rm, pairs, null, options) { MaxActivationBytes = bytes }.Train().Steps);
        // Full training reads two inputs per pair and fits.
        var full = new EncoderRewardTrainer(rm, pairs, null, options with { Objective = RewardObjective.Full }) { MaxActivationBytes = bytes / 2 };
        Assert.Equal(1, full.Train().Steps);
    }

    [Theory]
    [InlineData("bert", "BertForMaskedLM", false)]
    [InlineData("deberta-v3", "DebertaV2Model", true)]
    public void A_pretrained_encoder_keeps_its_weights_and_gets_a_new_head(string family, string architecture, bool bare)
    {
        var config = EncoderReferenceTests.ConfigOf(family);
        string prefix = EncoderClassifier.BackbonePrefix((string)config["model_type"]!);
        string dir = TinyEncoders.Write(_dir.File(family), config, seed: 5, edit: tensors =>
        {
            // What a pretrained checkpoint holds: the encoder (BertForMaskedLM without the pooler; a bare model without
            // the prefix) and a pre-training head the reward model does not use.
            foreach (var key in tensors.Keys.ToList())
                if (!key.StartsWith(prefix) || key.StartsWith(prefix + "pooler."))
                {
                    tensors[key].Dispose();
                    tensors.Remove(key);
                }
            if (bare)
                foreach (var key in tensors.Keys.ToList()) { tensors[key[prefix.Length..]] = tensors[key]; tensors.Remove(key); }
            else tensors["cls.predictions.bias"] = zeros(7);
        });
        config["architectures"] = new JsonArray(architecture);
        config.Remove("id2label");
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());

        using var rm = EncoderRewardModel.ForTraining(dir, EncoderInput.Text, seed: 3, null, out string? note);
        Assert.Contains($"a pretrained {architecture}", note);
        var parameters = rm.Classifier.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var stored = Pargs.Checkpoints.Safetensors.Load(Path.Combine(dir, "model.safetensors"));
        foreach (var (key, value) in stored.Where(kv => !kv.Key.StartsWith("cls.")))
            Assert.True(parameters[bare ? prefix + key : key].eq(value).all().item<bool>(), key);
        foreach (var t in stored.Values) t.Dispose();
        Assert.Equal([1L, 16L], parameters["classifier.weight"].shape);
        Assert.InRange(parameters["classifier.weight"].std().item<float>(), 0.005, 0.05);

        var pairs = SeparablePairs(rm, 4, seed: 1, new PrefixPositions.Stride(2));
        var options = Options(RewardObjective.Partial, null, 2);
        new EncoderRewardTrainer(rm, pairs, null, options with { Loop = options.Loop with { EvalEvery = null } }).Train();
        string saved = _dir.File("saved-" + family);
        rm.Save(saved, RewardObjective.Partial);
        using var loaded = EncoderRewardModel.Load(saved); // a …ForSequenceClassification folder now
        Assert.Equal(rm.Score([("Once upon a time", " good cat.")])[0], loaded.Score([("Once upon a time", " good cat.")])[0], 5);
    }

    [Fact]
    public void A_multi_label_head_is_replaced_by_one_output_drawn_from_the_seed_and_the_rest_loads_as_saved()
    {
        string start = Bert();
        using var a = EncoderRewardModel.ForTraining(start, EncoderInput.Text, seed: 7, null, out _);
        using var b = EncoderRewardModel.ForTraining(start, EncoderInput.Text, seed: 7, null, out _);
        using var c = EncoderRewardModel.ForTraining(start, EncoderInput.Text, seed: 8, null, out _);
        var pa = a.Classifier.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pb = b.Classifier.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pc = c.Classifier.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal([1L, 16L], pa["classifier.weight"].shape);
        Assert.True(pa["classifier.weight"].eq(pb["classifier.weight"]).all().item<bool>());
        Assert.False(pa["classifier.weight"].eq(pc["classifier.weight"]).all().item<bool>());
        Assert.Equal(0f, pa["classifier.bias"].item<float>());
        double std = pa["classifier.weight"].std().item<float>();
        Assert.InRange(std, 0.005, 0.05);
        var stored = Pargs.Checkpoints.Safetensors.Load(Path.Combine(start, "model.safetensors"));
        Assert.True(pa["bert.pooler.dense.weight"].eq(stored["bert.pooler.dense.weight"]).all().item<bool>());
        foreach (var t in stored.Values) t.Dispose();
    }
}
