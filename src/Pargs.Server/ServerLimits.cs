namespace Pargs.Server;

/// <summary>
/// What one request may ask of the server. Every bound is checked before any work is queued, and a request beyond
/// one is a 400 naming the field (a request the server cannot take right now is a 429 instead).
/// </summary>
public sealed record ServerLimits
{
    /// <summary>Largest request body in bytes (Kestrel stops reading beyond it: 413).</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;
    /// <summary>Requests admitted at once: the running one plus those waiting; beyond it, 429 with Retry-After.</summary>
    public int MaxQueuedRequests { get; init; } = 32;
    /// <summary>Upper bound of <c>max_tokens</c> (the model's context bounds prompt + max_tokens too).</summary>
    public int MaxTokens { get; init; } = 1024;
    /// <summary>Upper bound of <c>n</c> (choices per request).</summary>
    public int MaxN { get; init; } = 16;
    /// <summary>Upper bound of <c>k</c> (candidates per step; also bounded by the vocabulary).</summary>
    public int MaxK { get; init; } = 64;
    /// <summary>Most alternatives per token a request's logprobs / top_logprobs may ask for (vLLM's <c>--max-logprobs</c>, whose default is 20).</summary>
    public int MaxLogProbs { get; init; } = 64;
    /// <summary>
    /// Upper bound of the sequences one request decodes at once: n × k for the tokenwise-guided methods (each row scores
    /// k candidates per step), n × best_of for Best-of-N, n otherwise.
    /// </summary>
    public int MaxSequencesPerRequest { get; init; } = 256;
    /// <summary>Stop strings per request and characters per stop string.</summary>
    public int MaxStopStrings { get; init; } = 4;
    public int MaxStopLength { get; init; } = 256;
    /// <summary>Texts one /v1/rewards request scores.</summary>
    public int MaxRewardInputs { get; init; } = 64;
    /// <summary>Chat messages per request.</summary>
    public int MaxMessages { get; init; } = 256;
    /// <summary>
    /// Bytes of KV caches each language model keeps for its prefix cache (rows that left, found again by a request whose
    /// prompt extends them); 0 turns the cache off.
    /// </summary>
    public long PrefixCacheBytes { get; init; } = 256L << 20;
    /// <summary>How long SIGTERM waits for running requests before the process exits.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(30);
}
