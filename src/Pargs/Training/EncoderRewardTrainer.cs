using Pargs.Rewards;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// Trains an encoder reward model (BERT, RoBERTa, DistilBERT, DeBERTa-v2/v3 with a one-label head) with the
/// Bradley–Terry loss, as <see cref="RewardTrainer"/> trains a causal one — same options record, loss, metric names,
/// checkpoints and exact resume (the optimisation is the shared <see cref="TrainingLoop"/>). Full: the whole responses.
/// Partial: every listed prefix pair, each prefix materialized as its own input (<see cref="EncoderComparisonBatch"/>):
/// a bidirectional model has no per-position rewards to read from one forward, so a step costs ~2·|prefixes| rows per
/// pair where the causal path costs 2 — bound it with PartialPairOptions' stride or sample.
/// </summary>
public sealed class EncoderRewardTrainer : ITrainingTask
{
    readonly EncoderRewardModel model;
    readonly IReadOnlyList<EncoderPreferencePair> train;
    readonly IReadOnlyList<EncoderPreferencePair>? evaluation;
    readonly RewardTrainingOptions options;

    public EncoderRewardTrainer(EncoderRewardModel model, IReadOnlyList<EncoderPreferencePair> train, IReadOnlyList<EncoderPreferencePair>? evaluation, RewardTrainingOptions options)
    {
        if (options.Objective is not (RewardObjective.Full or RewardObjective.Partial))
            throw new PargsException($"--objective {options.Objective.ToConfigValue()} needs a causal LM (a vocabulary head); an encoder reward model trains with full or partial");
        if (!(options.CenterRewardsCoefficient >= 0) || !double.IsFinite(options.CenterRewardsCoefficient))
            throw new PargsException($"--center-rewards must be a non-negative number, got {options.CenterRewardsCoefficient}");
        if (model.Label.NumLabels != 1)
            throw new ArgumentException($"an encoder reward model trains a one-label head (start it with EncoderRewardModel.ForTraining); this one has {model.Label.NumLabels} labels");
        if (train.Count == 0) throw new PargsException("there are no training pairs");
        foreach (var (set, pairs) in new[] { ("training", train), ("evaluation", evaluation ?? []) })
            for (int n = 0; n < pairs.Count; n++)
                if (pairs[n].PrefixLengths.Length == 0 || pairs[n].ChosenCuts.Length == 0 || pairs[n].RejectedCuts.Length == 0)
                    throw new PargsException($"{set} {(pairs[n].SourceLine > 0 ? $"line {pairs[n].SourceLine}" : $"pair {n}")}: both responses need at least one token and one prefix to compare");
        this.model = model;
        this.train = train;
        this.evaluation = evaluation is { Count: > 0 } ? evaluation : null;
        this.options = options;
        // Length bucketing by L: a pair's rows (and its prefix count) grow with it.
        ExampleLengths = train.Select(p => p.ResponseLength).ToArray();
    }

    public nn.Module Model => model.Classifier;
    public IReadOnlyList<int> ExampleLengths { get; }

    /// <summary>Trains with <see cref="RewardTrainingOptions.Loop"/>; the model is left in eval mode.</summary>
    public TrainingResult Train(IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
        => new TrainingLoop(this, options.Loop).Run(progress, cancellation);

    /// <summary>The prefix lengths that enter the loss for this objective: L only (full) or the pair's list (partial).</summary>
    public static IEnumerable<int> LossPrefixes(EncoderPreferencePair pair, RewardObjective objective)
        => objective == RewardObjective.Full ? [pair.ResponseLength] : pair.PrefixLengths;

    /// <summary>The Bradley–Terry loss and metrics of some pairs (every compared prefix one input, identical inputs read once).</summary>
    public static BradleyTerryResult Loss(EncoderRewardModel model, IReadOnlyList<EncoderPreferencePair> pairs, RewardObjective objective,
        double centerRewardsCoefficient = 0.0, bool useMargins = true)
    {
        using var scope = NewDisposeScope(); // the batch and rewards are this call's; the loss leaves with its graph (Models/TransformerBackbone.ForwardInScope says why)
        var batch = EncoderComparisonBatch.Build(model, pairs, pair => LossPrefixes(pair, objective));
        var (chosen, rejected) = batch.Rewards(model);
        var result = BradleyTerryLoss.Compute(chosen, rejected, useMargins ? batch.Margins : null, centerRewardsCoefficient);
        scope.MoveToOuter(result.Loss);
        return result;
    }

    /// <summary>
    /// The most activation memory one micro-batch may keep for its backward pass (estimated, see
    /// <see cref="EncoderComparisonBatch.EstimatedActivationBytes"/>); above it the step is refused with the settings to
    /// lower, instead of the process being killed for memory. Default 6 GiB.
    /// </summary>
    public long MaxActivationBytes { get; init; } = 6L << 30;

    public TrainingStep Forward(IReadOnlyList<int> examples)
    {
        using var scope = NewDisposeScope(); // the step's loss leaves with its graph (Models/TransformerBackbone.ForwardInScope says why)
        var pairs = examples.Select(i => train[i]).ToList();
        var batch = EncoderComparisonBatch.Build(model, pairs, pair => LossPrefixes(pair, options.Objective));
        long bytes = batch.EstimatedActivationBytes(model.Classifier.Config);
        if (bytes > MaxActivationBytes)
            throw new PargsException($"a micro-batch of {pairs.Count} pairs materializes {batch.Rows.Count} prefix inputs (about {bytes / (1 << 20):N0} MiB of activations for the backward pass, " +
                                     $"more than {MaxActivationBytes / (1 << 20):N0} MiB); lower --batch-size (with --grad-accum to keep the batch), or compare fewer prefixes with --prefix-stride or --prefix-sample");
        var (chosen, rejected) = batch.Rewards(model);
        var result = BradleyTerryLoss.Compute(chosen, rejected, options.UseMargins ? batch.Margins : null, options.CenterRewardsCoefficient);
        return new TrainingStep(scope.MoveToOuter(result.Loss), new Dictionary<string, double>
        {
            ["accuracy"] = result.Accuracy, ["margin"] = result.Margin, ["mean_reward"] = result.MeanReward,
        });
    }

    /// <summary>
    /// Eval metrics under the causal trainer's names: loss (mean over eval batches of the objective's loss), accuracy,
    /// margin and mean_reward on whole responses, and accuracy_by_prefix over the prefixes each eval pair lists
    /// (an encoder reads each prefix as its own input, so eval uses the pairs' stride or sample too, not every 1..L).
    /// </summary>
    public IReadOnlyDictionary<string, double>? Evaluate()
    {
        if (evaluation is null) return null;
        return Evaluate(model, evaluation, options.Objective, options.EvalBatchSize, options.CenterRewardsCoefficient, options.UseMargins);
    }

    public static Dictionary<string, double> Evaluate(EncoderRewardModel model, IReadOnlyList<EncoderPreferencePair> pairs, RewardObjective objective,
        int batchSize = 16, double centerRewardsCoefficient = 0.0, bool useMargins = true)
    {
        if (pairs.Count == 0) throw new PargsException("there are no evaluation pairs");
        var lengthScore = new double[PrefixBuckets.LengthLabels.Count];
        var lengthCount = new int[lengthScore.Length];
        var fractionScore = new double[PrefixBuckets.FractionLabels.Count];
        var fractionCount = new int[fractionScore.Length];
        double fullScore = 0, marginSum = 0, rewardSum = 0, lossSum = 0;
        int batches = 0;
        bool wasTraining = model.Classifier.training;
        model.Classifier.eval();
        using (no_grad())
            foreach (var chunk in pairs.OrderBy(p => p.ResponseLength).Chunk(batchSize))
            {
                using var scope = NewDisposeScope();
                // One batch holds every prefix either measurement needs; the loss takes its objective's subset.
                var batch = EncoderComparisonBatch.Build(model, chunk, pair => pair.PrefixLengths.Append(pair.ResponseLength).Distinct().Order());
                var (chosen, rejected) = batch.Rewards(model);
                var w = chosen.to(ScalarType.Float64).data<double>().ToArray();
                var l = rejected.to(ScalarType.Float64).data<double>().ToArray();
                var inLoss = new List<long>();
                int at = 0;
                foreach (var pair in chunk)
                {
                    var lossPrefixes = LossPrefixes(pair, objective).ToHashSet();
                    int count = pair.PrefixLengths.Append(pair.ResponseLength).Distinct().Count();
                    for (int n = at; n < at + count; n++)
                    {
                        int i = (int)batch.PrefixLengths[n], total = (int)batch.ResponseLengths[n];
                        double right = w[n] > l[n] ? 1.0 : w[n] == l[n] ? 0.5 : 0.0;
                        if (lossPrefixes.Contains(i)) inLoss.Add(n);
                        if (objective == RewardObjective.Partial && !pair.PrefixLengths.Contains(i)) continue; // L added for the full-response metrics only
                        int lb = PrefixBuckets.LengthBucket(i), fb = PrefixBuckets.FractionBucket(i, total);
                        lengthScore[lb] += right; lengthCount[lb]++;
                        fractionScore[fb] += right; fractionCount[fb]++;
                    }
                    int final = at + count - 1; // the prefixes are in ascending order: L is last
                    fullScore += w[final] > l[final] ? 1.0 : w[final] == l[final] ? 0.5 : 0.0;
                    marginSum += w[final] - l[final];
                    rewardSum += (w[final] + l[final]) / 2;
                    at += count;
                }
                var selected = tensor(inLoss.ToArray());
                var loss = BradleyTerryLoss.Compute(chosen.index_select(0, selected), rejected.index_select(0, selected),
                    useMargins ? batch.Margins.index_select(0, selected) : null, centerRewardsCoefficient).Loss;
                lossSum += loss.to(ScalarType.Float64).item<double>();
                batches++;
            }
        if (wasTraining) model.Classifier.train();
        static IReadOnlyList<BucketAccuracy> Buckets(IReadOnlyList<string> labels, double[] score, int[] count)
            => labels.Select((label, b) => new BucketAccuracy(label, count[b], count[b] == 0 ? double.NaN : score[b] / count[b])).ToList();
        var metrics = new RewardEvaluation(pairs.Count, fullScore / pairs.Count, marginSum / pairs.Count, rewardSum / pairs.Count,
            Buckets(PrefixBuckets.LengthLabels, lengthScore, lengthCount), Buckets(PrefixBuckets.FractionLabels, fractionScore, fractionCount)).ToMetrics();
        metrics["loss"] = lossSum / batches;
        return metrics;
    }

    /// <summary>Checkpoints are complete encoder reward-model folders (loadable with <see cref="EncoderRewardModel.Load"/>).</summary>
    public void SaveModel(string dir) => model.Save(dir, options.Objective);

    public void LoadModel(string dir)
    {
        if (RewardModel.ReadObjective(dir) is { } saved && saved != options.Objective)
            throw new PargsException($"{dir}: this checkpoint was trained with --objective {saved.ToConfigValue()}; resume with the same objective");
        var json = Json.CheckedJson.ReadFile(Path.Combine(dir, Checkpoints.HuggingFaceFolder.ConfigFile)).Object();
        if (json[EncoderInputs.ConfigField].StringOrNull() is { } input && input != model.Input.ToConfigValue())
            throw new PargsException($"{dir}: this checkpoint was trained with --input {input}; resume with the same input");
        var tensors = Checkpoints.Safetensors.Load(Path.Combine(dir, Checkpoints.HuggingFaceFolder.WeightsFile));
        try { Models.StateDict.Load(model.Classifier, tensors, dir); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }
}
