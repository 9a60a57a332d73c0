namespace Pargs.Training;

/// <summary>
/// Low-rank adapters (Hu et al. 2021, PEFT's LoraConfig): each targeted weight W [out, in] trains as
/// W₀ + (alpha / rank) · B · A with A [rank, in], B [out, rank]; only A and B are optimised.
/// </summary>
public sealed record LoraOptions
{
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    /// <summary>Module names whose weight is adapted (the last name segment, as in PEFT's target_modules).</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "v_proj"];
    /// <summary>Seeds A's initialisation (B starts at zero, so the adapted model equals the base).</summary>
    public int Seed { get; init; } = 0;

    public double Scale => Alpha / Rank;

    public LoraOptions Validate()
    {
        if (Rank <= 0) throw new PargsException($"--lora-rank must be positive (got {Rank})");
        if (!(Alpha > 0)) throw new PargsException($"--lora-alpha must be positive (got {Alpha})");
        if (TargetModules.Count == 0) throw new PargsException("--lora-targets must name at least one module (e.g. q_proj,v_proj)");
        return this;
    }
}
