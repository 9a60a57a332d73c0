using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Pargs.Data;

namespace Pargs.Server;

/// <summary>
/// The OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions (JSON or server-sent events ending
/// in <c>data: [DONE]</c>) and Pargs' /v1/rewards. Requests are read strictly (<see cref="RequestJson"/>), checked by the
/// backend before any work, then admitted (<see cref="RequestAdmission"/>) or refused with 429.
/// </summary>
public sealed class OpenAiEndpoints(ServedModels models, IGenerationBackend backend, ServerLimits limits, ServerMetrics metrics, RequestAdmission admission)
{
    static readonly string[] CompletionFields = [.. GenerationRequestReader.SharedFields, "prompt", "logprobs", "return_tokens_as_token_ids"];
    static readonly Dictionary<string, string> CompletionRefused = new(GenerationRequestReader.SharedRefused)
    {
        ["echo"] = "the prompt is not echoed back.",
        ["suffix"] = "insertion (a suffix after the completion) is not supported.",
    };
    static readonly string[] ChatFields = [.. GenerationRequestReader.SharedFields, "messages", "max_completion_tokens", "parallel_tool_calls", "logprobs", "top_logprobs", "return_tokens_as_token_ids"];
    static readonly Dictionary<string, string> ChatRefused = new(GenerationRequestReader.SharedRefused)
    {
        ["modalities"] = "output is text only.",
        ["audio"] = "output is text only.",
        ["prediction"] = "predicted outputs are not supported.",
        ["reasoning_effort"] = "the served models do not reason.",
        ["web_search_options"] = "web search is not supported.",
        ["metadata"] = "completions are not stored.",
        ["service_tier"] = "there is one tier.",
    };

    public IResult Models()
    {
        var body = Json(w =>
        {
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            foreach (var m in models.LanguageModels) Model(w, m.Name, "language_model");
            foreach (var m in models.RewardModels) Model(w, m.Name, "reward_model");
            w.WriteEndArray();
        });
        return Results.Bytes(body, "application/json");

        static void Model(Utf8JsonWriter w, string name, string kind)
        {
            w.WriteStartObject();
            w.WriteString("id", name);
            w.WriteString("object", "model");
            w.WriteNumber("created", 0);
            w.WriteString("owned_by", "pargs");
            w.WriteString("pargs_kind", kind);
            w.WriteEndObject();
        }
    }

    public async Task Completions(HttpContext context)
    {
        using var json = RequestJson.Parse(await RequestBody.ReadAsync(context, limits));
        json.RefuseUnknown(CompletionFields, CompletionRefused);
        var (prompt, promptIds) = ReadPrompt(json);
        int? logProbs = GenerationRequestReader.CompletionLogProbs(json, limits);
        var (request, stream, includeUsage) = GenerationRequestReader.Read(json, prompt, "prompt", limits, null, defaultMaxTokens: 16, logProbs); // OpenAI's default for completions
        request = request with { PromptIds = promptIds };
        await Run(context, request, stream, includeUsage, chat: false, tokensAsIds: json.OptionalBool("return_tokens_as_token_ids") ?? false);
    }

    /// <summary>
    /// A string, an array of one string, or token ids (<c>[1, 2, 3]</c>, or <c>[[1, 2, 3]]</c>: one prompt) as vLLM takes them —
    /// what a remote engine sends, so that no text round trip changes the ids.
    /// </summary>
    (string Text, int[]? Ids) ReadPrompt(RequestJson json)
    {
        if (!json.Root.TryGetProperty("prompt", out var prompt) || prompt.ValueKind == JsonValueKind.Null)
            throw ApiException.BadRequest("'prompt' is required.", "prompt", "missing_required_parameter");
        if (prompt.ValueKind == JsonValueKind.String) return (prompt.GetString()!, null);
        if (prompt.ValueKind == JsonValueKind.Array)
        {
            int count = prompt.GetArrayLength();
            if (count == 1 && prompt[0].ValueKind == JsonValueKind.String) return (prompt[0].GetString()!, null);
            if (count == 1 && prompt[0].ValueKind == JsonValueKind.Array) return ("", TokenIds(prompt[0], "prompt[0]"));
            if (count > 0 && prompt[0].ValueKind == JsonValueKind.Number) return ("", TokenIds(prompt, "prompt"));
            throw ApiException.BadRequest("'prompt' must be one string, an array of one string, or one prompt of token ids; several prompts per request are not supported.", "prompt");
        }
        throw RequestJson.WrongType("prompt", prompt, "a string or an array of token ids");
    }

    int[] TokenIds(JsonElement array, string at)
    {
        int count = array.GetArrayLength();
        if (count == 0) throw ApiException.BadRequest($"'{at}' has no token ids.", "prompt");
        // The body limit bounds the count already; the context check (in the backend) bounds it by the model.
        var ids = new int[count];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out ids[i]) || ids[i] < 0)
                throw ApiException.BadRequest($"'{at}[{i}]' must be a token id (a non-negative integer), got {RequestJson.Shorten(item.GetRawText())}.", "prompt");
            i++;
        }
        return ids;
    }

    public async Task ChatCompletions(HttpContext context)
    {
        using var json = RequestJson.Parse(await RequestBody.ReadAsync(context, limits));
        json.RefuseUnknown(ChatFields, ChatRefused);
        string modelName = json.RequiredString("model");
        var served = models.LanguageModel(modelName);
        var messages = ReadMessages(json);
        string prompt = served.ChatTemplate.RenderPrompt(messages);
        if (json.Has("max_tokens") && json.Has("max_completion_tokens"))
            throw ApiException.BadRequest("Give 'max_completion_tokens' or 'max_tokens', not both.", "max_completion_tokens");
        int? maxCompletion = (int?)json.OptionalInteger("max_completion_tokens", 1, limits.MaxTokens);
        int? logProbs = GenerationRequestReader.ChatLogProbs(json, limits);
        var (request, stream, includeUsage) = GenerationRequestReader.Read(json, prompt, "messages", limits, maxCompletion, defaultMaxTokens: null, logProbs); // chat: up to the context
        request = request with { AddSpecialTokens = !served.ChatTemplate.RendersSpecialTokens };
        // The chat template's end-of-turn marker ends the answer, as the template's own training text does.
        if (served.ChatTemplate == PromptTemplate.ChatMl && !request.Stop.Contains("<|im_end|>"))
            request = request with { Stop = [.. request.Stop, "<|im_end|>"] };
        await Run(context, request, stream, includeUsage, chat: true, tokensAsIds: json.OptionalBool("return_tokens_as_token_ids") ?? false);
    }

    List<ChatMessage> ReadMessages(RequestJson json)
    {
        if (!json.Root.TryGetProperty("messages", out var array) || array.ValueKind == JsonValueKind.Null)
            throw ApiException.BadRequest("'messages' is required.", "messages", "missing_required_parameter");
        if (array.ValueKind != JsonValueKind.Array) throw RequestJson.WrongType("messages", array, "an array");
        int count = array.GetArrayLength();
        if (count == 0) throw ApiException.BadRequest("'messages' is empty.", "messages");
        if (count > limits.MaxMessages) throw ApiException.BadRequest($"'messages' has {count} messages; at most {limits.MaxMessages} are allowed.", "messages");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var message in array.EnumerateArray())
        {
            string at = $"messages[{i}]";
            if (message.ValueKind != JsonValueKind.Object) throw RequestJson.WrongType(at, message, "an object with 'role' and 'content'");
            string? role = null, content = null;
            foreach (var field in message.EnumerateObject())
            {
                switch (field.Name)
                {
                    case "role":
                        if (field.Value.ValueKind != JsonValueKind.String) throw RequestJson.WrongType($"{at}.role", field.Value, "a string");
                        role = field.Value.GetString();
                        break;
                    case "content":
                        content = ReadContent(field.Value, $"{at}.content");
                        break;
                    default:
                        throw ApiException.BadRequest($"'{at}.{RequestJson.Shorten(field.Name)}' is not supported (a message has 'role' and 'content').", $"{at}.{RequestJson.Shorten(field.Name)}", "unknown_parameter");
                }
            }
            role = role switch
            {
                "system" or "developer" => ChatMessage.System,
                "user" => ChatMessage.User,
                "assistant" => ChatMessage.Assistant,
                null => throw ApiException.BadRequest($"'{at}.role' is required.", $"{at}.role"),
                _ => throw ApiException.BadRequest($"'{at}.role' must be system, developer, user or assistant; got '{RequestJson.Shorten(role)}'.", $"{at}.role"),
            };
            if (content is null) throw ApiException.BadRequest($"'{at}.content' is required.", $"{at}.content");
            list.Add(new ChatMessage(role, content));
            i++;
        }
        return list;
    }

    static string ReadContent(JsonElement content, string at)
    {
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw RequestJson.WrongType(at, content, "a string or an array of text parts");
        var text = new StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object
                || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String
                || type.GetString() != "text" || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
                throw ApiException.BadRequest($"'{at}': only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported.", at);
            text.Append(partText.GetString());
        }
        return text.ToString();
    }

    async Task Run(HttpContext context, GenerationRequest request, bool stream, bool includeUsage, bool chat, bool tokensAsIds)
    {
        var validated = backend.Validate(request); // every 4xx before any work
        int promptTokens = validated.PromptTokens;
        using var admitted = admission.TryEnter() ?? throw TooBusy();
        var clock = Stopwatch.StartNew();
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var texts = Enumerable.Range(0, request.N).Select(_ => new StringBuilder()).ToArray();
        var finish = new string?[request.N];
        var logProbs = Enumerable.Range(0, request.N).Select(_ => new List<TokenLogProbs>()).ToArray();
        var textOffsets = new int[request.N]; // completions' text_offset continues across streamed chunks
        var tokenizer = models.LanguageModel(request.Model).Model.Tokenizer!;
        int completionTokens = 0;
        double? lastText = null;

        CompletionChunkWriter? chunks = null;
        if (stream)
        {
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            context.Response.Headers["X-Accel-Buffering"] = "no";
            chunks = new CompletionChunkWriter(context.Response.BodyWriter, id, created, request.Model, chat);
            if (chat)
                for (int i = 0; i < request.N; i++)
                    chunks.Delta(i, "", null, role: true);
            await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
        }
        try
        {
            // Streamed events are flushed when no further update is ready: a client that fell behind, or n choices of one
            // step, get their events in one send instead of one send (and one HTTP chunk) per event; none waits for a later token.
            await using var updates = backend.GenerateAsync(validated, context.RequestAborted).GetAsyncEnumerator(context.RequestAborted);
            bool unflushed = false;
            for (var moving = updates.MoveNextAsync(); ; moving = updates.MoveNextAsync())
            {
                if (unflushed && !moving.IsCompleted)
                {
                    await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
                    unflushed = false;
                }
                if (!await moving) break;
                var update = updates.Current;
                if (update.TextDelta.Length > 0)
                {
                    double now = clock.Elapsed.TotalSeconds;
                    if (lastText is null) metrics.ObserveFirstToken(now); else metrics.ObserveInterToken(now - lastText.Value);
                    lastText = now;
                }
                if (update.FinishReason is not null)
                {
                    finish[update.Index] = update.FinishReason;
                    completionTokens += update.CompletionTokens;
                }
                if (chunks is null)
                {
                    texts[update.Index].Append(update.TextDelta);
                    if (update.LogProbs is not null) logProbs[update.Index].AddRange(update.LogProbs);
                }
                else if (update.TextDelta.Length > 0 || update.FinishReason is not null)
                {
                    chunks.Delta(update.Index, update.TextDelta, update.FinishReason, role: false,
                        request.LogProbs is null ? null : update.LogProbs ?? [], tokenizer, tokensAsIds, ref textOffsets[update.Index]);
                    unflushed = true;
                }
            }
            // A stream's last events stay in the pipe: the usage chunk and [DONE] follow, and all go in the response's last send.
        }
        catch (Exception e) when (stream && context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            // Headers are gone: the error travels as an event, as OpenAI-compatible servers send it mid-stream.
            var (status, message, type, param, code) = ErrorHandling.Describe(e);
            await context.Response.WriteAsync($"data: {OpenAiErrors.Body(message, type, param, code)}\n\n");
            return;
        }
        metrics.CountTokens(promptTokens, completionTokens);
        if (chunks is not null)
        {
            if (includeUsage) chunks.Usage(promptTokens, completionTokens);
            chunks.Done();
            // Sends what is buffered and ends the chunked body in one write, where a flush and then the end were two sends.
            await context.Response.CompleteAsync();
        }
        else
        {
            await WriteJson(context, w =>
            {
                Header(w, id, created, request.Model, chat ? "chat.completion" : "text_completion");
                w.WriteStartArray("choices");
                for (int i = 0; i < request.N; i++)
                {
                    w.WriteStartObject();
                    w.WriteNumber("index", i);
                    if (chat)
                    {
                        w.WriteStartObject("message");
                        w.WriteString("role", "assistant");
                        w.WriteString("content", texts[i].ToString());
                        w.WriteEndObject();
                    }
                    else w.WriteString("text", texts[i].ToString());
                    LogProbsJson.WriteField(w, request.LogProbs is null ? null : logProbs[i], tokenizer, chat, tokensAsIds, 0);
                    w.WriteString("finish_reason", finish[i] ?? "length");
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                CompletionChunkWriter.WriteUsage(w, promptTokens, completionTokens);
            });
        }
        metrics.ObserveRequest(clock.Elapsed.TotalSeconds);
    }

    public async Task Rewards(HttpContext context)
    {
        using var json = RequestJson.Parse(await RequestBody.ReadAsync(context, limits));
        json.RefuseUnknown(["model", "input", "prefix", "user"], new Dictionary<string, string>());
        string model = json.RequiredString("model");
        var served = models.RewardModel(model, "model"); // 404 before reading the texts
        if (!json.Root.TryGetProperty("input", out var input) || input.ValueKind == JsonValueKind.Null)
            throw ApiException.BadRequest("'input' is required: a text, an array of texts, an array of {\"prompt\", \"response\"} pairs, or token ids.", "input", "missing_required_parameter");
        // Pargs' own shortening of token-id inputs that share a prefix (a steering client's k candidates of a row): the
        // prefix once, then each input's own ids after it — the sequences scored are prefix + input. The whole-sequence form
        // carries the prefix k times, which the client writes and the server parses k times: O(k · length) per request.
        int[]? prefix = null;
        int rewardContext = served.Model.Config.MaxPositions;
        if (json.Root.TryGetProperty("prefix", out var prefixIds) && prefixIds.ValueKind != JsonValueKind.Null)
        {
            if (prefixIds.ValueKind != JsonValueKind.Array) throw RequestJson.WrongType("prefix", prefixIds, "an array of token ids");
            // Checked before anything is sized by it: the prefix is copied into every input, so an unbounded one costs
            // its length × the inputs in memory. Every input adds at least one id, so a prefix that fills the context
            // leaves no room for any.
            if (prefixIds.GetArrayLength() >= rewardContext)
                throw new ApiException(400, $"'prefix' has {prefixIds.GetArrayLength()} token ids, which with any input after them exceed the reward model's context of {rewardContext}.", "prefix", "context_length_exceeded");
            prefix = RewardIds(prefixIds, "prefix", "prefix");
        }
        RewardInput Ids(JsonElement ids, string at)
        {
            if (prefix is null) return new RewardInput("", Ids: RewardIds(ids, "input", at));
            if (prefix.Length + ids.GetArrayLength() > rewardContext)
                throw new ApiException(400, $"'prefix' + '{at}' have {prefix.Length} + {ids.GetArrayLength()} token ids, more than the reward model's context of {rewardContext}.", "prefix", "context_length_exceeded");
            var own = RewardIds(ids, "input", at);
            return new RewardInput("", Ids: [.. prefix, .. own], PrefixLength: prefix.Length);
        }
        var texts = new List<RewardInput>();
        if (input.ValueKind == JsonValueKind.String && prefix is null) texts.Add(new RewardInput(input.GetString()!));
        else if (input.ValueKind == JsonValueKind.Array && input.GetArrayLength() > 0 && input[0].ValueKind == JsonValueKind.Number)
            texts.Add(Ids(input, "input")); // one sequence of token ids, as OpenAI's embeddings take it
        else if (input.ValueKind == JsonValueKind.Array)
        {
            int count = input.GetArrayLength();
            if (count == 0) throw ApiException.BadRequest("'input' is empty.", "input");
            if (count > limits.MaxRewardInputs) throw ApiException.BadRequest($"'input' has {count} items; at most {limits.MaxRewardInputs} are allowed.", "input");
            int i = 0;
            foreach (var item in input.EnumerateArray())
            {
                if (prefix is not null && item.ValueKind != JsonValueKind.Array)
                    throw ApiException.BadRequest($"'input[{i}]' must be an array of token ids: 'prefix' goes with token-id inputs only.", "prefix");
                texts.Add(item.ValueKind switch
                {
                    JsonValueKind.String => new RewardInput(item.GetString()!),
                    JsonValueKind.Object => Pair(item, i),
                    JsonValueKind.Array => Ids(item, $"input[{i}]"),
                    _ => throw RequestJson.WrongType($"input[{i}]", item, "a string, a {\"prompt\", \"response\"} object or an array of token ids"),
                });
                i++;
            }
        }
        else if (prefix is not null) throw ApiException.BadRequest("'input' must be token ids: 'prefix' goes with token-id inputs only.", "prefix");
        else throw RequestJson.WrongType("input", input, "a string or an array");

        using var admitted = admission.TryEnter() ?? throw TooBusy();
        var rewards = await backend.ScoreAsync(model, texts, context.RequestAborted);
        await WriteJson(context, w =>
        {
            w.WriteString("object", "list");
            w.WriteString("model", model);
            w.WriteStartArray("data");
            for (int i = 0; i < rewards.Length; i++)
            {
                w.WriteStartObject();
                w.WriteString("object", "reward");
                w.WriteNumber("index", i);
                w.WriteNumber("reward", rewards[i]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    /// <summary>
    /// A sequence of the reward model's token ids (OpenAI's embeddings shape: what a steering client whose tokenizer is the
    /// reward model's sends, so neither side decodes or tokenizes text); read as given, BOS included when the client put
    /// it there. Ids are checked against the vocabulary and the length against the context by the backend.
    /// </summary>
    /// <param name="array">The JSON array of ids.</param>
    /// <param name="param">The request field the ids are in ('input' or 'prefix'), which an error names.</param>
    /// <param name="at">Where in the request the array is (e.g. "input[3]"), for the error message.</param>
    static int[] RewardIds(JsonElement array, string param, string at)
    {
        int count = array.GetArrayLength();
        if (count == 0) throw ApiException.BadRequest($"'{at}' has no token ids.", param);
        var ids = new int[count];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out ids[i]) || ids[i] < 0)
                throw ApiException.BadRequest($"'{at}[{i}]' must be a token id (a non-negative integer), got {RequestJson.Shorten(item.GetRawText())}.", param);
            i++;
        }
        return ids;
    }

    /// <summary>A prompt/response pair: a causal reward model reads prompt + response, an encoder its saved input setting.</summary>
    static RewardInput Pair(JsonElement item, int i)
    {
        string? prompt = null, response = null;
        foreach (var field in item.EnumerateObject())
        {
            if (field.Name is not ("prompt" or "response"))
                throw ApiException.BadRequest($"'input[{i}].{RequestJson.Shorten(field.Name)}' is not supported (a pair has 'prompt' and 'response').", $"input[{i}]", "unknown_parameter");
            if (field.Value.ValueKind != JsonValueKind.String) throw RequestJson.WrongType($"input[{i}].{field.Name}", field.Value, "a string");
            if (field.Name == "prompt") prompt = field.Value.GetString(); else response = field.Value.GetString();
        }
        if (prompt is null || response is null) throw ApiException.BadRequest($"'input[{i}]' needs both 'prompt' and 'response'.", $"input[{i}]");
        return new RewardInput(prompt, response);
    }

    ApiException TooBusy()
    {
        metrics.Rejected();
        return new ApiException(429, $"The server is busy ({limits.MaxQueuedRequests} requests admitted); retry after a second.", code: "rate_limit_exceeded", type: "rate_limit_error");
    }

    static void Header(Utf8JsonWriter w, string id, long created, string model, string type)
    {
        w.WriteString("id", id);
        w.WriteString("object", type);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
    }

    [ThreadStatic] static ArrayBufferWriter<byte>? bodyBuffer;
    [ThreadStatic] static Utf8JsonWriter? bodyWriter;

    /// <summary>
    /// A JSON response body with its Content-Length, serialized into this thread's reused buffer and copied into the
    /// response's pipe. WHY: a remote steering client sends one non-streamed request per row and step (issue 18); this
    /// allocates nothing per response where a MemoryStream, a writer and a byte[] did, and the body goes out in one send,
    /// not as a chunked body and its end (completions and /v1/rewards, the two step requests). Safe on a thread-static buffer: nothing awaits between serializing and copying.
    /// </summary>
    static ValueTask<System.IO.Pipelines.FlushResult> WriteJson(HttpContext context, Action<Utf8JsonWriter> write)
    {
        var buffer = bodyBuffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var w = bodyWriter ??= new Utf8JsonWriter(buffer, CompletionChunkWriter.Options);
        w.Reset(buffer);
        w.WriteStartObject();
        write(w);
        w.WriteEndObject();
        w.Flush();
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = buffer.WrittenCount;
        context.Response.BodyWriter.Write(buffer.WrittenSpan);
        if (buffer.Capacity > 1 << 20) { bodyBuffer = null; bodyWriter = null; } // a rare huge body is not kept per thread
        return context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, CompletionChunkWriter.Options))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
