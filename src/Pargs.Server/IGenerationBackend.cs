namespace Pargs.Server;

/// <summary>
/// One generation request as the server hands it to a backend. Optional settings are null when the request left
/// them out, so the backend can refuse a setting that the chosen method would ignore (honour or refuse).
/// </summary>
public sealed record GenerationRequest
{
    /// <summary>A served language model's name.</summary>
    public required string Model { get; init; }
    /// <summary>The text to continue (a chat request's messages already rendered with the model's template).</summary>
    public required string Prompt { get; init; }
    /// <summary>greedy | topk | topp | best-of-n | args | pargs | pargs-g; null = OpenAI's sampling (temperature, top_p).</summary>
    public string? Method { get; init; }
    public int? K { get; init; }
    public double? W { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    /// <summary>Candidates of Best-of-N per choice.</summary>
    public int? BestOf { get; init; }
    /// <summary>A served reward model's name; null = the language model's default one.</summary>
    public string? RewardModel { get; init; }
    /// <summary>Null = as many as the context leaves after the prompt, within the server's max_tokens bound.</summary>
    public int? MaxTokens { get; init; }
    /// <summary>Null = a fresh random seed.</summary>
    public long? Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = Array.Empty<string>();
    /// <summary>Choices (independent samples of the prompt).</summary>
    public int N { get; init; } = 1;
    /// <summary>The request field that holds the prompt ("prompt" or "messages"), for error messages.</summary>
    public string PromptParam { get; init; } = "prompt";
    /// <summary>False when the prompt was rendered by the model's chat template, which writes its own special tokens.</summary>
    public bool AddSpecialTokens { get; init; } = true;
    /// <summary>A prompt given as token ids (completions' <c>prompt: [ids]</c>): used exactly as sent, no BOS added; null = <see cref="Prompt"/>.</summary>
    public int[]? PromptIds { get; init; }
    /// <summary>
    /// Log-probabilities to report with each generated token: null = none; 0 = the chosen token's only; N = also the N most
    /// likely tokens. Always the LM's raw distribution (log-softmax of the logits at temperature 1), before the method's
    /// processing (temperature, top-k/top-p truncation, reward guidance) — vLLM's <c>logprobs_mode=raw_logprobs</c>.
    /// </summary>
    public int? LogProbs { get; init; }
}

/// <summary>One generated token with its log-probability and the most likely alternatives (most likely first), from the raw distribution.</summary>
public sealed record TokenLogProbs(int Token, float LogProb, (int Token, float LogProb)[] Top);

/// <summary>
/// One update of a running request: new text of choice <see cref="Index"/>, and, on that choice's last update, why it
/// ended ("stop" | "length") and how many tokens it has.
/// </summary>
public sealed record GenerationUpdate(int Index, string TextDelta, string? FinishReason = null, int CompletionTokens = 0)
{
    /// <summary>
    /// When the request asked for log-probabilities: one entry per token accepted since the choice's previous update (text a
    /// stop string or an unfinished character holds back arrives later than its token's entry); a choice's updates together
    /// carry one entry per generated token, in order.
    /// </summary>
    public IReadOnlyList<TokenLogProbs>? LogProbs { get; init; }
}

/// <summary>
/// A request its backend has checked (<see cref="IGenerationBackend.Validate"/>): the prompt's length for the usage
/// numbers, and what the backend resolved it to — models, options, prompt ids — handed back to
/// <see cref="IGenerationBackend.GenerateAsync"/> so a request is resolved (and a text prompt tokenized) once.
/// </summary>
public sealed class ValidatedRequest(GenerationRequest request, int promptTokens, object? resolved = null)
{
    public GenerationRequest Request { get; } = request;
    public int PromptTokens { get; } = promptTokens;
    /// <summary>The backend's own resolution of the request (opaque to callers).</summary>
    public object? Resolved { get; } = resolved;
}

/// <summary>
/// What the server needs from a decoding engine: check a request up front (a 4xx before any work), run it as a stream
/// of text deltas, and score texts with a reward model. The first implementation (<see cref="BatchingGenerationBackend"/>)
/// runs requests one after another; a continuous-batching engine can take its place behind this interface.
/// </summary>
public interface IGenerationBackend : IDisposable
{
    /// <summary>The method names requests may give.</summary>
    IReadOnlyList<string> Methods { get; }

    /// <summary>
    /// Checks <paramref name="request"/> (names, ranges, settings the method would ignore, prompt + max_tokens against
    /// the context) and returns it resolved, with the prompt's length in tokens. Throws <see cref="ApiException"/>.
    /// </summary>
    ValidatedRequest Validate(GenerationRequest request);

    /// <summary>
    /// Runs a request this backend validated. Each choice's text is the concatenation of its deltas; every choice ends with
    /// one update carrying its finish reason. Cancelling <paramref name="cancellation"/> (client gone) stops the work.
    /// </summary>
    IAsyncEnumerable<GenerationUpdate> GenerateAsync(ValidatedRequest request, CancellationToken cancellation);

    /// <summary>
    /// The reward of each input (a causal reward model reads prompt + response with BOS first, as in training; an encoder
    /// reads a text as one sequence and a pair as its saved input setting says). Throws <see cref="ApiException"/> for an
    /// unknown model or an input beyond its context.
    /// </summary>
    Task<float[]> ScoreAsync(string rewardModel, IReadOnlyList<RewardInput> inputs, CancellationToken cancellation);

    /// <summary>Requests waiting for the engine (not counting running ones).</summary>
    int QueueDepth { get; }

    /// <summary>The backend's own counters and gauges for /metrics (a prefix cache's hits and size, say); none by default.</summary>
    IReadOnlyList<BackendMetric> Metrics => [];
}

/// <summary>
/// One input of /v1/rewards: a text (<see cref="Response"/> null), a (prompt, response) pair, or the reward model's token
/// ids (<see cref="Ids"/>; the text is then empty), of which the first <see cref="PrefixLength"/> came from the request's
/// 'prefix' (so that an error names the field the bad id was sent in).
/// </summary>
public sealed record RewardInput(string Text, string? Response = null, int[]? Ids = null, int PrefixLength = 0);

/// <summary>One backend number for /metrics: a Prometheus counter (only grows) or gauge, with its help text.</summary>
public sealed record BackendMetric(string Name, string Help, bool IsCounter, double Value, string? Labels = null);
