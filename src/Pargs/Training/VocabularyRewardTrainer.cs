using Pargs.Models;
using Pargs.Data;
using Pargs.Rewards;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>
/// Trains a reward model with a vocabulary head (<see cref="VocabularyRewardModel"/>): FaRMA (<see cref="FarmaLoss"/>:
/// Bradley–Terry on whole responses and the max constraint on chosen prefixes, alternating by micro-batch as the
/// paper alternates them, or summed) or GenARM (<see cref="GenArmLoss"/>). Every step computes both FaRMA losses
/// from one forward, so both are logged whichever one is optimised. The optimisation is the shared
/// <see cref="TrainingLoop"/>; checkpoints are complete reward-model folders.
/// <para>Alternation counts this trainer's forwards: a resumed run starts again with a Bradley–Terry micro-batch.</para>
/// </summary>
public sealed class VocabularyRewardTrainer : ITrainingTask
{
    readonly VocabularyRewardModel model;
    readonly IReadOnlyList<TokenizedPair> train;
    readonly IReadOnlyList<TokenizedPair>? evaluation;
    readonly VocabularyRewardTrainingOptions options;
    readonly int? eos;
    long forwards;

    public VocabularyRewardTrainer(VocabularyRewardModel model, IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair>? evaluation, VocabularyRewardTrainingOptions options)
    {
        options.Validate();
        if (model.Objective != options.Objective)
            throw new ArgumentException($"the model is a {model.Objective.ToConfigValue()} reward model but the options train {options.Objective.ToConfigValue()}");
        this.model = model;
        this.train = train;
        this.evaluation = evaluation is { Count: > 0 } ? evaluation : null;
        this.options = options;
        eos = model.Config.EosTokenId;
        if (train.Count == 0) throw new PargsException($"train-rm --objective {options.Objective.ToConfigValue()}: there are no training pairs");
        int maxLength = Math.Min(options.MaxLength ?? int.MaxValue, model.Config.MaxPositions);
        int vocab = model.Config.VocabSize;
        foreach (var (set, pairs) in new[] { ("training", train), ("evaluation", evaluation ?? []) })
            for (int n = 0; n < pairs.Count; n++)
            {
                var pair = pairs[n];
                string where = pair.SourceLine > 0 ? $"{set} line {pair.SourceLine}" : $"{set} pair {n}";
                if (pair.PromptIds.Length == 0)
                    throw new PargsException($"{where}: the prompt has no tokens; the first response token's reward is read at the position before it (add BOS)");
                if (pair.ChosenIds.Length != pair.RejectedIds.Length || pair.ChosenIds.Length == 0)
                    throw new PargsException($"{where}: chosen and rejected must be padded to the same non-zero length (got {pair.ChosenIds.Length} and {pair.RejectedIds.Length})");
                if (pair.ChosenLength <= 0 || pair.RejectedLength <= 0 || pair.ChosenLength > pair.ChosenIds.Length || pair.RejectedLength > pair.RejectedIds.Length)
                    throw new PargsException($"{where}: response lengths {pair.ChosenLength}/{pair.RejectedLength} do not fit the stored ids ({pair.ChosenIds.Length}/{pair.RejectedIds.Length})");
                if (options.Objective == RewardObjective.Genarm && pair.Margin is not null)
                    throw new PargsException($"{where}: the pair has a margin, which GenARM's loss has no term for (remove the \"margin\" field or train --objective farma, whose Bradley–Terry loss subtracts it)");
                if (pair.SequenceLength + 1 > maxLength)
                    throw new PargsException($"{where}: prompt + response is {pair.SequenceLength} tokens (+1 EOS), more than the maximum {maxLength}; lower the data's max length");
                foreach (var (field, ids) in new[] { ("prompt", pair.PromptIds), ("chosen", pair.ChosenIds), ("rejected", pair.RejectedIds) })
                    foreach (int id in ids)
                        if (id < 0 || id >= vocab)
                            throw new PargsException($"{where}: field '{field}' has token id {id}, outside the model's vocabulary of size {vocab}");
            }
        ExampleLengths = train.Select(p => p.SequenceLength).ToArray();
    }

    public nn.Module Model => model.Model;
    public IReadOnlyList<int> ExampleLengths { get; }

    /// <summary>Trains with <see cref="VocabularyRewardTrainingOptions.Loop"/>; the model is left in eval mode.</summary>
    public TrainingResult Train(IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        var result = new TrainingLoop(this, options.Loop).Run(progress, cancellation);
        model.Model.eval();
        return result;
    }

    /// <summary>The loss this trainer optimises on some pairs, and its metrics (<paramref name="phase"/>: FaRMA's micro-batch number).</summary>
    public (Tensor Loss, Dictionary<string, double> Metrics) Loss(IReadOnlyList<TokenizedPair> pairs, long phase)
    {
        using var scope = NewDisposeScope(); // the loss leaves with its graph (Models/TransformerBackbone.ForwardInScope says why)
        if (options.Objective == RewardObjective.Genarm)
        {
            var g = GenArmLoss.Compute(model.Model, pairs, options.Beta, eos);
            return (scope.MoveToOuter(g.Loss), new Dictionary<string, double>
            {
                ["accuracy"] = g.Accuracy, ["margin"] = g.Margin, ["logps/chosen"] = g.ChosenLogProb, ["logps/rejected"] = g.RejectedLogProb,
            });
        }
        var f = FarmaLoss.Compute(model, pairs, options.DetachMaxTarget);
        var metrics = new Dictionary<string, double>
        {
            ["accuracy"] = f.Accuracy, ["margin"] = f.Margin, ["mean_reward"] = f.MeanReward,
            ["bt_loss"] = f.BradleyTerry.to(ScalarType.Float64).item<double>(), ["max_loss"] = f.MaxConstraint.to(ScalarType.Float64).item<double>(),
        };
        var loss = options.FarmaSchedule == FarmaSchedule.Sum
            ? f.BradleyTerry.Plus(f.MaxConstraint.Times(options.MaxConstraintWeight))
            : phase % 2 == 0 ? f.BradleyTerry : f.MaxConstraint.Times(options.MaxConstraintWeight);
        return (scope.MoveToOuter(loss), metrics);
    }

    public TrainingStep Forward(IReadOnlyList<int> examples)
    {
        var (loss, metrics) = Loss(examples.Select(i => train[i]).ToList(), forwards++);
        return new TrainingStep(loss, metrics);
    }

    /// <summary>Eval-set means (per-batch means weighted by batch size); FaRMA's "loss" is BT + λ·max.</summary>
    public IReadOnlyDictionary<string, double>? Evaluate()
    {
        if (evaluation is null) return null;
        var sums = new Dictionary<string, double>();
        using var _ = no_grad();
        foreach (var chunk in evaluation.Chunk(options.EvalBatchSize))
        {
            using var scope = NewDisposeScope();
            var (loss, metrics) = Loss(chunk, 0);
            metrics["loss"] = options.Objective == RewardObjective.Farma
                ? metrics["bt_loss"] + options.MaxConstraintWeight * metrics["max_loss"]
                : loss.to(ScalarType.Float64).item<double>();
            foreach (var (name, value) in metrics) sums[name] = sums.GetValueOrDefault(name) + value * chunk.Length;
        }
        return sums.ToDictionary(kv => kv.Key, kv => kv.Value / evaluation.Count);
    }

    public void SaveModel(string dir) => model.Save(dir);

    public void LoadModel(string dir)
    {
        if (RewardModel.ReadObjective(dir) is { } saved && saved != options.Objective)
            throw new PargsException($"{dir}: this checkpoint was trained with --objective {saved.ToConfigValue()}; resume with the same objective");
        using var contents = Checkpoints.CheckpointLoader.Load(dir);
        bool tied = model.Config.TieWordEmbeddings;
        Models.StateDict.Load(model.Model, contents.Tensors, contents.Source, mayBeUnused: name => tied && name == "lm_head.weight");
    }
}
