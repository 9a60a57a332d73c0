using Pargs.Data;
using Pargs.Rewards;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// Trains a <see cref="RewardModel"/> with the Bradley–Terry loss on preference pairs: on whole responses
/// (objective full, TRL's RewardTrainer) or on every listed prefix pair (objective partial, PARGS). Each side of a
/// pair is one forward; prefix rewards are read at positions |prompt| + i − 1 (see <see cref="RewardPairBatch"/>).
/// The optimisation itself is the shared <see cref="TrainingLoop"/>.
/// </summary>
public sealed class RewardTrainer : ITrainingTask
{
    readonly RewardModel model;
    readonly IReadOnlyList<TokenizedPair> train;
    readonly IReadOnlyList<TokenizedPair>? evaluation;
    readonly RewardTrainingOptions options;

    public RewardTrainer(RewardModel model, IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? evaluation, RewardTrainingOptions options)
    {
        this.model = model;
        this.train = train;
        this.evaluation = evaluation is { Count: > 0 } ? evaluation : null;
        this.options = options;
        if (!(options.CenterRewardsCoefficient >= 0) || !double.IsFinite(options.CenterRewardsCoefficient))
            throw new PargsException($"--center-rewards must be a non-negative number, got {options.CenterRewardsCoefficient}");
        int maxLength = Math.Min(options.MaxLength ?? int.MaxValue, model.Config.MaxPositions);
        foreach (var (set, pairs) in new[] { ("training", train), ("evaluation", evaluation ?? []) })
            for (int n = 0; n < pairs.Count; n++)
            {
                var pair = pairs[n];
                string where = pair.SourceLine > 0 ? $"line {pair.SourceLine}" : $"pair {n}";
                if (pair.SequenceLength > maxLength)
                    throw new PargsException($"{set} {where}: prompt + response is {pair.SequenceLength} tokens, more than the maximum {maxLength}; lower the data's max length");
                if (pair.ChosenIds.Length != pair.RejectedIds.Length || pair.ChosenIds.Length == 0)
                    throw new PargsException($"{set} {where}: chosen and rejected must be padded to the same non-zero length (got {pair.ChosenIds.Length} and {pair.RejectedIds.Length})");
            }
        ExampleLengths = train.Select(p => p.SequenceLength).ToArray();
    }

    public nn.Module Model => model;
    public IReadOnlyList<int> ExampleLengths { get; }

    /// <summary>Trains with <see cref="RewardTrainingOptions.Loop"/>; the model is left in eval mode.</summary>
    public TrainingResult Train(IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
        => new TrainingLoop(this, options.Loop).Run(progress, cancellation);

    /// <summary>The prefix lengths that enter the loss for this objective.</summary>
    public static IEnumerable<int> LossPrefixes(TokenizedPair pair, RewardObjective objective)
        => objective == RewardObjective.Full ? [pair.ResponseLength] : pair.PrefixLengths;

    /// <summary>The Bradley–Terry loss and metrics of some pairs, from one forward over both sides.</summary>
    public static BradleyTerryResult Loss(RewardModel model, IReadOnlyList<TokenizedPair> pairs, RewardObjective objective,
        double centerRewardsCoefficient = 0.0, bool useMargins = true)
    {
        using var scope = NewDisposeScope(); // the batch and rewards are this call's; the loss leaves with its graph (Models/TransformerBackbone.ForwardInScope says why)
        var batch = RewardPairBatch.Build(pairs, pair => LossPrefixes(pair, objective));
        var (chosen, rejected) = batch.Rewards(model);
        var result = BradleyTerryLoss.Compute(chosen, rejected, useMargins ? batch.Margins : null, centerRewardsCoefficient);
        scope.MoveToOuter(result.Loss);
        return result;
    }

    public TrainingStep Forward(IReadOnlyList<int> examples)
    {
        var result = Loss(model, examples.Select(i => train[i]).ToList(), options.Objective, options.CenterRewardsCoefficient, options.UseMargins);
        return new TrainingStep(result.Loss, new Dictionary<string, double>
        {
            ["accuracy"] = result.Accuracy, ["margin"] = result.Margin, ["mean_reward"] = result.MeanReward,
        });
    }

    public IReadOnlyDictionary<string, double>? Evaluate()
    {
        if (evaluation is null) return null;
        using var scope = NewDisposeScope(); // each batch's loss is read and dropped (Models/TransformerBackbone.ForwardInScope says why)
        var metrics = RewardEvaluator.Evaluate(model, evaluation, options.EvalBatchSize).ToMetrics();
        double lossSum = 0;
        int batches = 0;
        foreach (var chunk in evaluation.Chunk(options.EvalBatchSize))
        {
            lossSum += Loss(model, chunk, options.Objective, options.CenterRewardsCoefficient, options.UseMargins).Loss.to(ScalarType.Float64).item<double>();
            batches++;
        }
        metrics["loss"] = lossSum / batches;
        return metrics;
    }

    /// <summary>Checkpoints are complete reward-model folders (loadable with <see cref="RewardModel.Load"/>).</summary>
    public void SaveModel(string dir) => model.Save(dir, options.Objective);

    public void LoadModel(string dir)
    {
        // Resuming a partial run as a full one (or back) would finish a model trained on two objectives under one name.
        if (RewardModel.ReadObjective(dir) is { } saved && saved != options.Objective)
            throw new PargsException($"{dir}: this checkpoint was trained with --objective {saved.ToConfigValue()}; resume with the same objective");
        using var contents = Checkpoints.CheckpointLoader.Load(dir);
        Models.StateDict.Load(model, contents.Tensors, contents.Source, mayBeUnused: name => name == "lm_head.weight");
    }
}
