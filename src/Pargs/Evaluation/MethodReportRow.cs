namespace Pargs.Evaluation;

/// <summary>
/// One row of the comparison table: a method at one guidance weight w (null for methods without one).
/// Optional metrics are NaN when their delegate was not supplied; <see cref="VsBaseline"/> is null without
/// a baseline.
/// </summary>
public sealed record MethodReportRow(
    string Method,
    double? W,
    int Count,
    MeanWithError Reward,
    WinTieLoss? VsBaseline,
    double Diversity,
    double Coherence,
    double Perplexity,
    Throughput Throughput)
{
    /// <summary>
    /// KL(π ‖ p_base) in nats per sample, mean ± SE of the per-sample estimates log π(y) − log p_base(y)
    /// (<see cref="GenerationRecord.KlToBase"/>); null when the method defines no per-token policy (argmax methods,
    /// searches over samples), where <see cref="Perplexity"/> measures the distance to the base LM instead.
    /// </summary>
    public MeanWithError? KlToBase { get; init; }
}
