using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Pargs.Data;
using Pargs.Models;
using Pargs.Rewards;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using PargsChatMessage = Pargs.Data.ChatMessage;

namespace Pargs.Server;

/// <summary>Settings of a <see cref="PargsChatClient"/>.</summary>
public sealed record PargsChatClientOptions
{
    /// <summary>How messages become the prompt (plain, hh, chatml).</summary>
    public PromptTemplate ChatTemplate { get; init; } = PromptTemplate.Plain;
    /// <summary>The model id responses report.</summary>
    public string ModelId { get; init; } = "pargs";
    public ServerLimits Limits { get; init; } = new();
}

/// <summary>
/// Pargs as a <c>Microsoft.Extensions.AI</c> <see cref="IChatClient"/>, in process: the same requests as
/// <c>pargs serve</c>'s /v1/chat/completions (same backend, same template), so the same settings give the same text.
/// <see cref="ChatOptions"/> maps Temperature, TopP, TopK (k), MaxOutputTokens, Seed and StopSequences; the guided
/// settings travel in <see cref="ChatOptions.AdditionalProperties"/>: <c>method</c> (greedy | topk | topp | best-of-n |
/// args | pargs | pargs-g), <c>k</c>, <c>w</c>, <c>best_of</c>. Settings Pargs cannot honour (tools, penalties,
/// a JSON response format) are refused with a <see cref="PargsException"/>, never ignored.
/// <code>
///   using var lm = CausalLM.Load("data/models/stories260K/tinyllamas-stories-260k-f32.gguf");
///   using var rm = RewardModel.Load("data/models/stories260K-partial-rm");
///   IChatClient chat = new PargsChatClient(lm, rm);
///   var answer = await chat.GetResponseAsync("Tim was sad because", new ChatOptions
///       { Seed = 1, MaxOutputTokens = 40, AdditionalProperties = new() { ["method"] = "pargs", ["w"] = 2.0 } });
/// </code>
/// </summary>
public sealed class PargsChatClient : IChatClient
{
    const string LanguageModelName = "lm", RewardModelName = "rm";
    readonly ServedModels models;
    readonly IGenerationBackend backend;
    readonly PargsChatClientOptions options;

    /// <summary>A client over <paramref name="lm"/> guided by <paramref name="rm"/> (optional). The models stay the caller's to dispose.</summary>
    public PargsChatClient(CausalLM lm, Pargs.Rewards.IRewardModel? rm = null, PargsChatClientOptions? options = null)
    {
        this.options = options ?? new PargsChatClientOptions();
        models = new ServedModels(disposeModels: false);
        if (rm is not null) models.AddRewardModel(RewardModelName, rm);
        models.AddLanguageModel(LanguageModelName, lm, this.options.ChatTemplate);
        backend = new BatchingGenerationBackend(models, this.options.Limits);
    }

    public ChatClientMetadata Metadata => new("pargs", null, options.ModelId);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? chatOptions = null, CancellationToken cancellationToken = default)
    {
        var request = Request(messages, chatOptions);
        int promptTokens = request.PromptTokens;
        var text = new StringBuilder();
        string? finish = null;
        int completionTokens = 0;
        await foreach (var update in backend.GenerateAsync(request, cancellationToken))
        {
            text.Append(update.TextDelta);
            if (update.FinishReason is not null) (finish, completionTokens) = (update.FinishReason, update.CompletionTokens);
        }
        return new ChatResponse(new AiChatMessage(ChatRole.Assistant, text.ToString()))
        {
            ModelId = options.ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            ResponseId = "chatcmpl-" + Guid.NewGuid().ToString("N"),
            FinishReason = Finish(finish),
            Usage = new UsageDetails { InputTokenCount = promptTokens, OutputTokenCount = completionTokens, TotalTokenCount = promptTokens + completionTokens },
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? chatOptions = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = Request(messages, chatOptions);
        int promptTokens = request.PromptTokens;
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow;
        await foreach (var update in backend.GenerateAsync(request, cancellationToken))
        {
            var contents = new List<AIContent>();
            if (update.TextDelta.Length > 0) contents.Add(new TextContent(update.TextDelta));
            if (update.FinishReason is not null)
                contents.Add(new UsageContent(new UsageDetails { InputTokenCount = promptTokens, OutputTokenCount = update.CompletionTokens, TotalTokenCount = promptTokens + update.CompletionTokens }));
            if (contents.Count == 0) continue;
            yield return new ChatResponseUpdate(ChatRole.Assistant, contents)
            {
                ResponseId = id,
                MessageId = id,
                ModelId = options.ModelId,
                CreatedAt = created,
                FinishReason = update.FinishReason is null ? null : Finish(update.FinishReason),
            };
        }
    }

    static ChatFinishReason? Finish(string? reason) => reason switch
    {
        "stop" => ChatFinishReason.Stop,
        "length" => ChatFinishReason.Length,
        null => null,
        _ => new ChatFinishReason(reason),
    };

    ValidatedRequest Request(IEnumerable<AiChatMessage> messages, ChatOptions? chat)
    {
        var list = messages.Select(m =>
        {
            string role = m.Role == ChatRole.System ? PargsChatMessage.System
                : m.Role == ChatRole.User ? PargsChatMessage.User
                : m.Role == ChatRole.Assistant ? PargsChatMessage.Assistant
                : throw new PargsException($"PargsChatClient: messages of role '{m.Role}' are not supported (system, user, assistant)");
            if (m.Contents.Any(c => c is not TextContent)) throw new PargsException("PargsChatClient: only text content is supported");
            return new PargsChatMessage(role, m.Text);
        }).ToList();
        if (list.Count == 0) throw new PargsException("PargsChatClient: no messages");
        if (chat is not null)
        {
            if (chat.Tools is { Count: > 0 }) throw new PargsException("PargsChatClient: tools are not supported");
            if (chat.FrequencyPenalty is not null) throw new PargsException("PargsChatClient: FrequencyPenalty is not supported (no method applies penalties)");
            if (chat.PresencePenalty is not null) throw new PargsException("PargsChatClient: PresencePenalty is not supported (no method applies penalties)");
            if (chat.ResponseFormat is not null and not ChatResponseFormatText) throw new PargsException("PargsChatClient: only a text ResponseFormat is supported");
            if (chat.ModelId is { } id && id != options.ModelId) throw new PargsException($"PargsChatClient: ModelId '{id}' is not this client's model '{options.ModelId}'");
        }
        var extra = chat?.AdditionalProperties;
        foreach (var key in extra?.Keys ?? Enumerable.Empty<string>())
            if (key is not ("method" or "k" or "w" or "best_of"))
                throw new PargsException($"PargsChatClient: unknown AdditionalProperties entry '{key}' (expected method, k, w, best_of)");
        if (chat?.TopK is not null && extra?.ContainsKey("k") == true) throw new PargsException("PargsChatClient: give TopK or AdditionalProperties[\"k\"], not both");

        var request = new GenerationRequest
        {
            Model = LanguageModelName,
            Prompt = options.ChatTemplate.RenderPrompt(list),
            PromptParam = "messages",
            AddSpecialTokens = !options.ChatTemplate.RendersSpecialTokens,
            Method = Extra<string>(extra, "method"),
            K = chat?.TopK ?? Extra<int?>(extra, "k"),
            W = Extra<double?>(extra, "w"),
            BestOf = Extra<int?>(extra, "best_of"),
            Temperature = chat?.Temperature,
            TopP = chat?.TopP,
            MaxTokens = chat?.MaxOutputTokens,
            Seed = chat?.Seed,
            Stop = chat?.StopSequences?.ToArray() ?? Array.Empty<string>(),
        };
        if (options.ChatTemplate == PromptTemplate.ChatMl && !request.Stop.Contains("<|im_end|>"))
            request = request with { Stop = [.. request.Stop, "<|im_end|>"] };
        try
        {
            return backend.Validate(request);
        }
        catch (ApiException e)
        {
            throw new PargsException($"PargsChatClient: {e.Message}");
        }
    }

    /// <summary>An AdditionalProperties value as <typeparamref name="T"/> (numbers may come as any numeric type, strings, or JsonElements).</summary>
    static T? Extra<T>(AdditionalPropertiesDictionary? extra, string key)
    {
        if (extra is null || !extra.TryGetValue(key, out var value) || value is null) return default;
        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        try
        {
            if (value is JsonElement json) value = json.ValueKind == JsonValueKind.String ? json.GetString()! : json.GetRawText();
            if (target == typeof(string)) return value is string s ? (T)(object)s : throw new FormatException();
            if (target == typeof(int))
            {
                double d = Convert.ToDouble(value, CultureInfo.InvariantCulture);
                if (d != Math.Floor(d) || d < int.MinValue || d > int.MaxValue) throw new FormatException();
                return (T)(object)(int)d;
            }
            return (T)Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException)
        {
            throw new PargsException($"PargsChatClient: AdditionalProperties[\"{key}\"] = {value}: expected {(target == typeof(string) ? "a string" : target == typeof(int) ? "an integer" : "a number")}");
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
        => serviceKey is not null ? null
            : serviceType == typeof(ChatClientMetadata) ? Metadata
            : serviceType.IsInstanceOfType(this) ? this
            : null;

    public void Dispose()
    {
        backend.Dispose();
        models.Dispose();
    }
}
