namespace Pargs.Decoding;

/// <summary>Settings of one generation run (every method reads the ones that concern it).</summary>
public sealed record DecodingOptions
{
    public DecodingMethod Method { get; init; } = DecodingMethod.TopK;
    /// <summary>Candidates per step (top-k), also the default N of Best-of-N as in the paper.</summary>
    public int K { get; init; } = 10;
    /// <summary>Reward weight w in log p + w·r.</summary>
    public double W { get; init; } = 1.0;
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 0.9;
    /// <summary>Samples per prompt for Best-of-N (null = K).</summary>
    public int? N { get; init; }
    public int Seed { get; init; }
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>Generation stops (and the text is cut) when a row's text contains one of these.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
    /// <summary>Stop at EOS (the tokenizer's or the config's).</summary>
    public bool StopAtEos { get; init; } = true;
    /// <summary>Prompts run together; rows finish independently.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>
    /// The reference algorithm (no LM cache; every candidate scored by its own full forward of prompt +
    /// sequence). Exists only as the benchmark baseline and correctness oracle.
    /// </summary>
    public bool Naive { get; init; }

    public int SamplesPerPrompt => N ?? K;

    /// <summary>Checks the options against a vocabulary size; the message names the option.</summary>
    public DecodingOptions Validate(int vocabSize)
    {
        bool usesK = Method is DecodingMethod.TopK or DecodingMethod.BestOfN || Method.IsTokenwiseGuided();
        if (usesK && K <= 0) throw new PargsException($"-k must be at least 1, got {K}");
        if (usesK && K > vocabSize) throw new PargsException($"-k {K} is larger than the vocabulary ({vocabSize} tokens)");
        if (Method.Samples() && !(Temperature > 0)) throw new PargsException($"--temperature must be positive for {Method.Name()}, got {Temperature}");
        if (Method == DecodingMethod.TopP && !(TopP > 0 && TopP <= 1)) throw new PargsException($"--top-p must be in (0, 1], got {TopP}");
        if (Method == DecodingMethod.BestOfN && SamplesPerPrompt <= 0) throw new PargsException($"-n must be at least 1, got {SamplesPerPrompt}");
        if (!double.IsFinite(W)) throw new PargsException($"-w must be a finite number, got {W}");
        if (MaxNewTokens <= 0) throw new PargsException($"--max-new-tokens must be at least 1, got {MaxNewTokens}");
        if (BatchSize <= 0) throw new PargsException($"--batch-size must be at least 1, got {BatchSize}");
        if (StopStrings.Any(string.IsNullOrEmpty)) throw new PargsException("--stop: a stop string is empty (it would match before any text)");
        return this;
    }
}
