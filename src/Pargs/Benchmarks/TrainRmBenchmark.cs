using System.Diagnostics;
using Pargs.Data;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Training;
using static TorchSharp.torch;

namespace Pargs.Benchmarks;

/// <summary>Settings of <see cref="TrainRmBenchmark"/>.</summary>
public sealed record TrainRmBenchmarkOptions
{
    public int Threads { get; init; } = 1;
    public IReadOnlyList<int> ResponseLengths { get; init; } = new[] { 32, 64, 128 };
    public int PromptLength { get; init; } = 16;
    public int PairsPerBatch { get; init; } = 4;
    public int Repeats { get; init; } = 3;
    public string Stories260KPath { get; init; } = BenchmarkModels.Stories260KPath;
}

/// <summary>
/// Partial reward-model training throughput (pairs/s, forward + backward of the Bradley–Terry loss over every
/// prefix): one causal forward per pair side, as <see cref="RewardTrainer"/> trains, against materializing
/// each of the L prefix pairs as its own sequence (what a prefix-by-prefix implementation does).
/// Same model (stories260K + score head), same pairs, same loss.
/// </summary>
public static class TrainRmBenchmark
{
    public static BenchTable Run(TrainRmBenchmarkOptions options, Action<string>? log = null)
    {
        BenchChecks.AtLeastOne(options.ResponseLengths, "--lengths");
        BenchChecks.Threads([options.Threads]);
        Models.Cpu.ComputeThreads.Set(options.Threads);
        using var contents = Checkpoints.CheckpointLoader.Load(options.Stories260KPath);
        foreach (int length in options.ResponseLengths)
            if (options.PromptLength + length > contents.Config.MaxPositions)
                throw new PargsException($"--lengths {length}: prompt {options.PromptLength} + response {length} tokens exceeds the model's context ({contents.Config.MaxPositions})");
        using var model = RewardModel.FromCausalLM(contents, seed: 1);
        model.train();
        var table = new BenchTable($"bench train-rm: partial BT training pairs/s (batch {options.PairsPerBatch} pairs, prompt {options.PromptLength}, threads {options.Threads})",
            "response length L", "one forward (pairs/s)", "materialized prefixes (pairs/s)", "speed-up (target ≥ 10 at L = 64)");
        foreach (int length in options.ResponseLengths)
        {
            var pairs = Enumerable.Range(0, options.PairsPerBatch).Select(i => SyntheticPair(options.PromptLength, length, contents.Config.VocabSize, seed: i)).ToList();
            log?.Invoke($"train-rm: L={length} one forward");
            double oneForward = PairsPerSecond(() => RewardTrainer.Loss(model, pairs, RewardObjective.Partial).Loss, pairs.Count, options.Repeats);
            log?.Invoke($"train-rm: L={length} materialized");
            double materialized = PairsPerSecond(() => MaterializedLoss(model, pairs), pairs.Count, options.Repeats);
            table.Add(length.ToString(), $"{oneForward:F1}", $"{materialized:F2}", $"{oneForward / materialized:F1}");
        }
        table.Notes.Add("Both sides compute the same loss (tests/Pargs.Tests/Rewards checks equality of loss and gradients ≤ 1e-5); each timing is forward + backward, median of the repeats.");
        return table;
    }

    /// <summary>
    /// Encoder backbones beside the causal one, measured in one run (forward + backward of the Bradley–Terry loss,
    /// median of the repeats): the stories260K reward model's one forward (partial: every prefix; full), and a random
    /// BERT of the same shape (hidden, layers, heads, feed-forward width and vocabulary of stories260K) trained full and
    /// partial with materialized prefixes — every prefix, and a stride that keeps 8 per pair. An encoder step includes
    /// the prefixes' tokenization (what <see cref="EncoderRewardTrainer"/> does each step). The texts are words of a
    /// one-token-per-word WordPiece vocabulary, so a response of L words is L tokens for the encoder and the LM alike.
    /// A configuration whose activations would pass <see cref="EncoderMemoryBudget"/> runs with fewer pairs per step
    /// (the per-pair rate is what is reported), down to one.
    /// </summary>
    public static BenchTable RunEncoder(TrainRmBenchmarkOptions options, Action<string>? log = null)
    {
        BenchChecks.AtLeastOne(options.ResponseLengths, "--lengths");
        BenchChecks.Threads([options.Threads]);
        Models.Cpu.ComputeThreads.Set(options.Threads);
        using var contents = Checkpoints.CheckpointLoader.Load(options.Stories260KPath);
        var c = contents.Config;
        int longest = options.PromptLength + options.ResponseLengths.Max();
        if (longest > c.MaxPositions)
            throw new PargsException($"--lengths {options.ResponseLengths.Max()}: prompt {options.PromptLength} + response exceeds the model's context ({c.MaxPositions})");
        using var causal = RewardModel.FromCausalLM(contents, seed: 1);
        causal.train();
        var tokenizer = WordTokenizer(c.VocabSize);
        var encoderConfig = new Models.Encoders.EncoderConfig
        {
            ModelType = "bert", Architecture = "BertForSequenceClassification", Labels = ["LABEL_0"], VocabSize = c.VocabSize,
            HiddenSize = c.HiddenSize, NumLayers = c.NumLayers, NumHeads = c.NumHeads, HeadDim = c.HiddenSize / c.NumHeads,
            IntermediateSize = c.IntermediateSize, MaxPositionEmbeddings = longest + 2, TypeVocabSize = 2, LayerNormEps = 1e-12,
            Activation = Models.Encoders.EncoderActivation.Gelu, PadTokenId = 0,
        };
        using var encoder = new EncoderRewardModel(Models.Encoders.EncoderClassifier.Create(encoderConfig), tokenizer, EncoderInput.Text,
            RewardLabel.Resolve(["LABEL_0"], false, null, "bench"), "bench BERT");
        encoder.Classifier.train();
        var table = new BenchTable($"bench train-rm: encoder vs causal backbone of the same shape (hidden {c.HiddenSize}, {c.NumLayers} layers, {c.NumHeads} heads, " +
                                   $"vocabulary {c.VocabSize}; prompt {options.PromptLength}, up to {options.PairsPerBatch} pairs per step, threads {options.Threads})",
            "L", "backbone", "objective", "prefixes per pair", "inputs per pair per step", "pairs/s", "× causal partial");
        foreach (int length in options.ResponseLengths)
        {
            var tokenized = Enumerable.Range(0, options.PairsPerBatch).Select(i => SyntheticPair(options.PromptLength, length, c.VocabSize, seed: i)).ToList();
            log?.Invoke($"train-rm: L={length} causal");
            double causalPartial = PairsPerSecond(() => RewardTrainer.Loss(causal, tokenized, RewardObjective.Partial).Loss, tokenized.Count, options.Repeats);
            double causalFull = PairsPerSecond(() => RewardTrainer.Loss(causal, tokenized, RewardObjective.Full).Loss, tokenized.Count, options.Repeats);
            table.Add(length.ToString(), "causal (stories260K + score)", "partial, one forward", $"{length}", "2", $"{causalPartial:F1}", "1");
            table.Add(length.ToString(), "causal (stories260K + score)", "full", "1", "2", $"{causalFull:F1}", $"{causalFull / causalPartial:F2}");
            int stride = Math.Max(1, length / 8);
            foreach (var (objective, name, positions) in new (RewardObjective, string, PrefixPositions)[]
                     {
                         (RewardObjective.Full, "full", new PrefixPositions.FinalOnly()),
                         (RewardObjective.Partial, $"partial, stride {stride}", new PrefixPositions.Stride(stride)),
                         (RewardObjective.Partial, "partial, every prefix", new PrefixPositions.All()),
                     })
            {
                if (positions is PrefixPositions.Stride { Every: 1 }) continue; // the same as every prefix
                var pairs = tokenized.Select((p, i) => EncoderPreferencePair.Build(tokenizer, new PreferencePair(Words(p.PromptIds), Words(p.ChosenIds), Words(p.RejectedIds)),
                    new PartialPairOptions { Positions = positions }, i)).ToList();
                int count = pairs.Count;
                while (count > 1 && EncoderComparisonBatch.Build(encoder, pairs.Take(count).ToList(), p => EncoderRewardTrainer.LossPrefixes(p, objective))
                           .EstimatedActivationBytes(encoderConfig) > EncoderMemoryBudget) count--;
                var used = pairs.Take(count).ToList();
                var batch = EncoderComparisonBatch.Build(encoder, used, p => EncoderRewardTrainer.LossPrefixes(p, objective));
                double prefixes = used.Average(p => EncoderRewardTrainer.LossPrefixes(p, objective).Count());
                if (batch.EstimatedActivationBytes(encoderConfig) > EncoderMemoryBudget)
                {
                    table.Add(length.ToString(), "encoder (BERT)", name, $"{prefixes:F1}", $"{(double)batch.Rows.Count / count:F1}", "not run (one pair passes the memory budget)", "");
                    continue;
                }
                log?.Invoke($"train-rm: L={length} encoder {name} ({count} pairs per step)");
                double rate = PairsPerSecond(() => EncoderRewardTrainer.Loss(encoder, used, objective).Loss, count, options.Repeats);
                table.Add(length.ToString(), "encoder (BERT)", name + (count < pairs.Count ? $" ({count} pairs per step)" : ""), $"{prefixes:F1}",
                    $"{(double)batch.Rows.Count / count:F1}", $"{rate:F2}", $"{rate / causalPartial:F3}");
            }
        }
        table.Notes.Add("inputs per pair per step: distinct encoder inputs a step reads for one pair (chosen and rejected prefixes; identical inputs — the shorter side past its end, shared beginnings — read once). " +
                        "The causal model reads each side once whatever the number of prefixes.");
        table.Notes.Add("Synthetic pairs: chosen and rejected are independent random words, so prefixes are rarely shared; real pairs that start alike cost the encoder less.");
        return table;
    }

    /// <summary>Activation memory an encoder configuration may take in <see cref="RunEncoder"/> (the machine is shared and has no swap).</summary>
    public const long EncoderMemoryBudget = 3L << 30;

    /// <summary>Token id k as the word "wk" of <see cref="WordTokenizer"/>: one word, one token.</summary>
    static string Words(IEnumerable<int> ids) => string.Concat(ids.Select(id => " w" + Math.Max(id, 4)));

    /// <summary>A WordPiece tokenizer whose vocabulary is [PAD], [UNK], [CLS], [SEP] and the words w4 … w(vocab−1), with BERT's template.</summary>
    static Tokenizers.HuggingFaceTokenizer WordTokenizer(int vocab)
    {
        string[] specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];
        var words = new System.Text.Json.Nodes.JsonObject();
        for (int id = 0; id < vocab; id++) words[id < specials.Length ? specials[id] : "w" + id] = id;
        var root = new System.Text.Json.Nodes.JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new System.Text.Json.Nodes.JsonArray(specials.Select((t, id) => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject
            {
                ["id"] = id, ["content"] = t, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            }).ToArray()),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "WhitespaceSplit" },
            ["post_processor"] = new System.Text.Json.Nodes.JsonObject
            {
                ["type"] = "BertProcessing", ["sep"] = new System.Text.Json.Nodes.JsonArray("[SEP]", 3), ["cls"] = new System.Text.Json.Nodes.JsonArray("[CLS]", 2),
            },
            ["decoder"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
            ["model"] = new System.Text.Json.Nodes.JsonObject
            {
                ["type"] = "WordPiece", ["unk_token"] = "[UNK]", ["continuing_subword_prefix"] = "##", ["max_input_chars_per_word"] = 100, ["vocab"] = words,
            },
        };
        return (Tokenizers.HuggingFaceTokenizer)Tokenizers.TokenizerJson.FromJson(root, "bench word tokenizer", null, null);
    }

    /// <summary>The reference construction: every prefix pair a separate (right-padded) sequence, rewards at the last token.</summary>
    static Tensor MaterializedLoss(RewardModel model, IReadOnlyList<TokenizedPair> pairs)
    {
        var prefixes = pairs.SelectMany(p => p.MaterializePrefixes()).ToList();
        var winners = PaddedBatch.RightPadded(prefixes.Select(p => p.WinnerIds).ToList());
        var losers = PaddedBatch.RightPadded(prefixes.Select(p => p.LoserIds).ToList());
        var chosen = model.SequenceRewards(winners.Ids, winners.Valid);
        var rejected = model.SequenceRewards(losers.Ids, losers.Valid);
        return BradleyTerryLoss.Compute(chosen, rejected).Loss;
    }

    static double PairsPerSecond(Func<Tensor> loss, int pairs, int repeats)
    {
        var times = new List<double>();
        for (int r = 0; r < repeats + 1; r++) // first run is a warm-up
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            loss().backward();
            if (r > 0) times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        return pairs / times[times.Count / 2];
    }

    static TokenizedPair SyntheticPair(int promptLength, int responseLength, int vocab, int seed)
    {
        var rng = new Random(seed);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(3, vocab)).ToArray();
        return PartialPairs.Build(Tokens(promptLength), Tokens(responseLength), Tokens(responseLength), eosId: 2);
    }
}
