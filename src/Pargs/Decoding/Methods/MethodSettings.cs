namespace Pargs.Decoding.Methods;

/// <summary>
/// The method settings a user gave, as given (null = not given): what a CLI, an experiment config or a
/// server request carries before a method is chosen. <see cref="DecodingMethod.Options"/> turns them into
/// that method's options record, with the method's own defaults for what is missing.
/// </summary>
public sealed record MethodSettings
{
    /// <summary>Candidates per step (top-k); also the default N of Best-of-N, as in the paper.</summary>
    public int? K { get; init; }
    /// <summary>Reward weight w in log p + w·r.</summary>
    public double? W { get; init; }
    /// <summary>Samples per prompt for Best-of-N (null = K).</summary>
    public int? N { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    /// <summary>Blockwise controlled decoding: continuations sampled per block (-K).</summary>
    public int? Continuations { get; init; }
    /// <summary>Blockwise controlled decoding: tokens per block (-M).</summary>
    public int? BlockLength { get; init; }
    /// <summary>CARDS: the reward r* its acceptance threshold rises to (--target-reward).</summary>
    public double? TargetReward { get; init; }

    /// <summary>The settings that were given.</summary>
    public IEnumerable<MethodParameter> Given
    {
        get
        {
            if (K is not null) yield return MethodParameter.K;
            if (W is not null) yield return MethodParameter.W;
            if (N is not null) yield return MethodParameter.N;
            if (Temperature is not null) yield return MethodParameter.Temperature;
            if (TopP is not null) yield return MethodParameter.TopP;
            if (Continuations is not null) yield return MethodParameter.Continuations;
            if (BlockLength is not null) yield return MethodParameter.BlockLength;
            if (TargetReward is not null) yield return MethodParameter.TargetReward;
        }
    }

    /// <summary>The paper's defaults: k = 10, w = 1, temperature 1, top-p 0.9.</summary>
    public const int DefaultK = 10;
    public const double DefaultW = 1.0, DefaultTemperature = 1.0, DefaultTopP = 0.9;
}
