using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Training;

/// <summary>The loss of one micro-batch (with its autograd graph) and the metrics to log for it (TRL names).</summary>
public sealed record TrainingStep(Tensor Loss, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// What a trainer (reward model, DPO…) tells <see cref="TrainingLoop"/>: the model, the examples, the loss of a
/// micro-batch, an evaluation, and how to save and restore the model's weights inside a checkpoint. The loop owns
/// everything else (optimizer, schedule, accumulation, clipping, data order, checkpoints, logs).
/// </summary>
public interface ITrainingTask
{
    nn.Module Model { get; }
    /// <summary>Length of each training example (for length bucketing).</summary>
    IReadOnlyList<int> ExampleLengths { get; }
    /// <summary>Loss and metrics of the examples with these indices.</summary>
    TrainingStep Forward(IReadOnlyList<int> examples);
    /// <summary>Evaluation metrics without the <c>eval_</c> prefix (the loop adds it); null when there is no eval set.</summary>
    IReadOnlyDictionary<string, double>? Evaluate();
    /// <summary>Writes the model into a checkpoint folder (which may not exist yet).</summary>
    void SaveModel(string dir);
    /// <summary>Restores the model's weights from a folder written by <see cref="SaveModel"/>.</summary>
    void LoadModel(string dir);
}
