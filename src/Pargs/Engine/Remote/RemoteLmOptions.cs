namespace Pargs.Engine.Remote;

/// <summary>Which HTTP protocol a remote language model speaks.</summary>
public enum RemoteLmProtocol
{
    /// <summary>OpenAI-compatible <c>/v1/completions</c> as vLLM serves it (and <c>pargs serve</c>).</summary>
    OpenAi,
    /// <summary>llama.cpp's server <c>/completion</c>.</summary>
    LlamaCpp,
    /// <summary>SGLang's <c>/generate</c>.</summary>
    SgLang,
}

/// <summary>How to reach a remote language model and how hard to try.</summary>
public sealed record RemoteLmOptions
{
    /// <summary>The server's base address, e.g. http://127.0.0.1:8000 (no /v1).</summary>
    public required Uri Url { get; init; }
    public RemoteLmProtocol Protocol { get; init; } = RemoteLmProtocol.OpenAi;
    /// <summary>The served model's name (OpenAI protocol); null = the first of <c>GET /v1/models</c>.</summary>
    public string? Model { get; init; }
    /// <summary>Log-probabilities asked per step and row: at least the method's k (the CLI sets it so).</summary>
    public int TopK { get; init; } = 10;
    /// <summary>Requests in flight at once (all rows of all steps share this bound).</summary>
    public int Concurrency { get; init; } = 16;
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Attempts after the first one on 429/502/503/504, timeouts and broken connections.</summary>
    public int Retries { get; init; } = 4;
    /// <summary>The first retry waits about this long; each next one twice as long (±50 % jitter).</summary>
    public TimeSpan RetryBase { get; init; } = TimeSpan.FromMilliseconds(250);
    /// <summary>Sent as Authorization: Bearer KEY when set.</summary>
    public string? ApiKey { get; init; }
    /// <summary>The model's context in tokens when the server does not report it (null = unbounded on this side).</summary>
    public int? ContextLength { get; init; }

    public static RemoteLmProtocol ParseProtocol(string name) => name.ToLowerInvariant() switch
    {
        "openai" or "vllm" or "pargs" => RemoteLmProtocol.OpenAi,
        "llamacpp" or "llama.cpp" => RemoteLmProtocol.LlamaCpp,
        "sglang" => RemoteLmProtocol.SgLang,
        _ => throw new PargsException($"--lm-protocol {name}: expected openai (vLLM, pargs serve), llamacpp or sglang"),
    };
}
