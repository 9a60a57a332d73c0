namespace Pargs.Server;

/// <summary>The request fields /v1/completions and /v1/chat/completions share, read into a <see cref="GenerationRequest"/>.</summary>
public static class GenerationRequestReader
{
    /// <summary>Fields both endpoints read (each endpoint adds its own).</summary>
    public static readonly string[] SharedFields =
    {
        "model", "max_tokens", "temperature", "top_p", "n", "seed", "stop", "stream", "stream_options", "user",
        "method", "k", "w", "reward_model", "best_of",
    };

    /// <summary>
    /// Completions' <c>logprobs</c> (an integer: the alternatives per token, 0 = the chosen token only), bounded by
    /// <see cref="ServerLimits.MaxLogProbs"/> as vLLM bounds it by <c>--max-logprobs</c>.
    /// </summary>
    public static int? CompletionLogProbs(RequestJson json, ServerLimits limits)
        => (int?)json.OptionalInteger("logprobs", 0, limits.MaxLogProbs);

    /// <summary>Chat's <c>logprobs</c> (true/false) and <c>top_logprobs</c> (alternatives per token, at most <see cref="ServerLimits.MaxLogProbs"/>; needs logprobs true).</summary>
    public static int? ChatLogProbs(RequestJson json, ServerLimits limits)
    {
        bool wanted = json.OptionalBool("logprobs") ?? false;
        int? top = (int?)json.OptionalInteger("top_logprobs", 0, limits.MaxLogProbs);
        if (top is not null && !wanted) throw ApiException.BadRequest("'top_logprobs' needs 'logprobs' set to true.", "top_logprobs");
        return wanted ? top ?? 0 : null;
    }

    /// <summary>OpenAI fields this server cannot honour, with why; sent with their neutral value they pass.</summary>
    public static readonly Dictionary<string, string> SharedRefused = new()
    {
        ["frequency_penalty"] = "no decoding method here applies penalties.",
        ["presence_penalty"] = "no decoding method here applies penalties.",
        ["logit_bias"] = "no decoding method here biases logits.",
        ["response_format"] = "output is free text only.",
        ["tools"] = "tool calls are not supported.",
        ["tool_choice"] = "tool calls are not supported.",
        ["functions"] = "function calls are not supported.",
        ["function_call"] = "function calls are not supported.",
        ["store"] = "completions are not stored.",
    };

    /// <summary>
    /// Reads the shared fields; <paramref name="maxTokensOverride"/> is a chat request's max_completion_tokens, and
    /// <paramref name="defaultMaxTokens"/> the max_tokens of a request that gives none (null: as many as the context leaves).
    /// </summary>
    public static (GenerationRequest Request, bool Stream, bool IncludeUsage) Read(RequestJson json, string prompt, string promptParam, ServerLimits limits,
        int? maxTokensOverride, int? defaultMaxTokens, int? logProbs = null)
    {
        bool stream = json.OptionalBool("stream") ?? false;
        bool includeUsage = false;
        if (json.Root.TryGetProperty("stream_options", out var options) && options.ValueKind != System.Text.Json.JsonValueKind.Null)
        {
            if (!stream) throw ApiException.BadRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options");
            if (options.ValueKind != System.Text.Json.JsonValueKind.Object) throw RequestJson.WrongType("stream_options", options, "an object");
            foreach (var p in options.EnumerateObject())
            {
                if (p.Name != "include_usage") throw ApiException.BadRequest($"Unrecognized field stream_options.{RequestJson.Shorten(p.Name)}.", "stream_options", "unknown_parameter");
                if (p.Value.ValueKind is not (System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False))
                    throw RequestJson.WrongType("stream_options.include_usage", p.Value, "true or false");
                includeUsage = p.Value.ValueKind == System.Text.Json.JsonValueKind.True;
            }
        }
        const long big = int.MaxValue;
        var request = new GenerationRequest
        {
            Model = json.RequiredString("model"),
            Prompt = prompt,
            PromptParam = promptParam,
            Method = json.OptionalString("method"),
            K = (int?)json.OptionalInteger("k", 1, big),
            W = json.OptionalNumber("w"),
            Temperature = json.OptionalNumber("temperature"),
            TopP = json.OptionalNumber("top_p"),
            BestOf = (int?)json.OptionalInteger("best_of", 1, big),
            RewardModel = json.OptionalString("reward_model"),
            MaxTokens = maxTokensOverride ?? (int?)json.OptionalInteger("max_tokens", 1, limits.MaxTokens) ?? defaultMaxTokens,
            Seed = json.OptionalInteger("seed", long.MinValue, long.MaxValue),
            Stop = json.StopStrings("stop", limits),
            N = (int)(json.OptionalInteger("n", 1, limits.MaxN) ?? 1),
            LogProbs = logProbs,
        };
        return (request, stream, includeUsage);
    }
}
