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
    Throughput Throughput);
