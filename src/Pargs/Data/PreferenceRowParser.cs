using System.Text.Json;

namespace Pargs.Data;

/// <summary>A row that cannot become a pair; the reader prefixes the file and line and then fails or skips.</summary>
internal sealed class BadRowException(BadRowReason reason, string message) : Exception(message)
{
    public BadRowReason Reason { get; } = reason;
}

/// <summary>One JSON row of any supported format → one <see cref="PreferencePair"/>, or a <see cref="BadRowException"/> naming the field.</summary>
internal static class PreferenceRowParser
{
    /// <summary>HH-RLHF's turn marker: the implicit prompt ends with the last one in the chosen dialogue.</summary>
    public const string AssistantMarker = "\n\nAssistant:";

    public static PreferenceFormat Detect(JsonElement row)
    {
        RequireObject(row);
        if (row.TryGetProperty("summaries", out _) && row.TryGetProperty("choice", out _)) return PreferenceFormat.TlDr;
        if (!row.TryGetProperty("chosen", out var chosen))
            throw new BadRowException(BadRowReason.UnknownFormat,
                "unknown row format: field 'chosen' is missing (expected {\"prompt\",\"chosen\",\"rejected\"}, " +
                "{\"chosen\",\"rejected\"}, their conversational message-list forms, or a TL;DR comparison with " +
                "\"info\", \"summaries\" and \"choice\").");
        bool hasPrompt = row.TryGetProperty("prompt", out _);
        return chosen.ValueKind switch
        {
            JsonValueKind.String => hasPrompt ? PreferenceFormat.Explicit : PreferenceFormat.ImplicitPrompt,
            JsonValueKind.Array => hasPrompt ? PreferenceFormat.Conversational : PreferenceFormat.ImplicitConversational,
            _ => throw WrongType("chosen", chosen, "a string or a list of {\"role\",\"content\"} messages"),
        };
    }

    public static PreferencePair Parse(JsonElement row, PreferenceFormat format, PromptTemplate template, int line)
    {
        RequireObject(row);
        var (prompt, chosen, rejected) = format switch
        {
            PreferenceFormat.Explicit => (template.RenderPrompt(RequireString(row, "prompt")),
                RequireString(row, "chosen"), RequireString(row, "rejected")),
            PreferenceFormat.ImplicitPrompt => SplitImplicitPrompt(RequireString(row, "chosen"), RequireString(row, "rejected")),
            PreferenceFormat.Conversational => ParseConversational(row, template),
            PreferenceFormat.ImplicitConversational => ParseImplicitConversational(row, template),
            PreferenceFormat.TlDr => ParseTlDr(row, template),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Format must be resolved before parsing."),
        };
        if (string.IsNullOrWhiteSpace(chosen))
            throw new BadRowException(BadRowReason.EmptyResponse, "field 'chosen': the chosen response is empty (expected non-blank text after the prompt).");
        if (string.IsNullOrWhiteSpace(rejected))
            throw new BadRowException(BadRowReason.EmptyResponse, "field 'rejected': the rejected response is empty (expected non-blank text after the prompt).");
        if (chosen == rejected)
            throw new BadRowException(BadRowReason.IdenticalResponses, "fields 'chosen' and 'rejected' are identical (expected two different responses).");
        return new PreferencePair(prompt, chosen, rejected, OptionalMargin(row), line);
    }

    /// <summary>HH-RLHF: prompt = chosen up to and including its last "\n\nAssistant:"; rejected must start with the same prompt.</summary>
    static (string, string, string) SplitImplicitPrompt(string chosen, string rejected)
    {
        int end = chosen.LastIndexOf(AssistantMarker, StringComparison.Ordinal);
        if (end < 0)
            throw new BadRowException(BadRowReason.InvalidValue,
                "field 'chosen' has no \"\\n\\nAssistant:\" turn (expected an HH-RLHF dialogue \"\\n\\nHuman: …\\n\\nAssistant: …\").");
        string prompt = chosen[..(end + AssistantMarker.Length)];
        if (!rejected.StartsWith(prompt, StringComparison.Ordinal))
        {
            int firstDifference = 0;
            while (firstDifference < rejected.Length && rejected[firstDifference] == prompt[firstDifference]) firstDifference++;
            throw new BadRowException(BadRowReason.PromptMismatch,
                $"field 'rejected' does not share the prompt of 'chosen' (expected both dialogues to be identical up to and " +
                $"including chosen's last \"\\n\\nAssistant:\", at character {prompt.Length}; they first differ at character {firstDifference}).");
        }
        return (prompt, chosen[prompt.Length..], rejected[prompt.Length..]);
    }

    static (string, string, string) ParseConversational(JsonElement row, PromptTemplate template)
    {
        var prompt = RequireMessages(row, "prompt");
        var chosen = RequireMessages(row, "chosen");
        var rejected = RequireMessages(row, "rejected");
        if (prompt.Count == 0)
            throw new BadRowException(BadRowReason.InvalidValue, "field 'prompt' is an empty list (expected at least one message).");
        return (template.RenderPrompt(prompt), RenderResponse(chosen, "chosen", template), RenderResponse(rejected, "rejected", template));
    }

    /// <summary>Prompt = the longest run of identical leading messages that is followed by an assistant turn on both sides.</summary>
    static (string, string, string) ParseImplicitConversational(JsonElement row, PromptTemplate template)
    {
        var chosen = RequireMessages(row, "chosen");
        var rejected = RequireMessages(row, "rejected");
        int shared = 0;
        while (shared < chosen.Count && shared < rejected.Count && chosen[shared] == rejected[shared]) shared++;
        if (shared == chosen.Count && shared == rejected.Count)
            throw new BadRowException(BadRowReason.IdenticalResponses, "fields 'chosen' and 'rejected' are identical (expected two different conversations).");
        // The prompt must stop right before an assistant turn (what the model is asked to produce).
        while (shared > 0 && (shared >= chosen.Count || chosen[shared].Role != ChatMessage.Assistant
                              || shared >= rejected.Count || rejected[shared].Role != ChatMessage.Assistant))
            shared--;
        if (shared == 0)
            throw new BadRowException(BadRowReason.PromptMismatch,
                "fields 'chosen' and 'rejected' share no leading messages followed by an assistant turn (expected the same prompt messages, then different assistant answers).");
        var prompt = chosen.Take(shared).ToList();
        return (template.RenderPrompt(prompt),
            RenderResponse(chosen.Skip(shared).ToList(), "chosen", template),
            RenderResponse(rejected.Skip(shared).ToList(), "rejected", template));
    }

    static string RenderResponse(IReadOnlyList<ChatMessage> messages, string field, PromptTemplate template)
    {
        if (messages.Count == 0)
            throw new BadRowException(BadRowReason.EmptyResponse, $"field '{field}' is an empty list (expected at least one assistant message).");
        if (messages[0].Role != ChatMessage.Assistant)
            throw new BadRowException(BadRowReason.InvalidValue,
                $"field '{field}[0].role' is \"{messages[0].Role}\" (expected the response to start with an \"assistant\" message).");
        if (messages.All(m => string.IsNullOrWhiteSpace(m.Content)))
            throw new BadRowException(BadRowReason.EmptyResponse, $"field '{field}': every message content is empty (expected a non-blank response).");
        return template.RenderResponse(messages);
    }

    /// <summary>OpenAI summarize-from-feedback: prompt = the post in the TL;DR query format; chosen = summaries[choice].</summary>
    static (string, string, string) ParseTlDr(JsonElement row, PromptTemplate template)
    {
        if (!row.TryGetProperty("info", out var info)) throw Missing("info", "an object with \"post\"");
        if (info.ValueKind != JsonValueKind.Object) throw WrongType("info", info, "an object with \"post\"");
        string post = info.TryGetProperty("post", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()!
            : info.TryGetProperty("article", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! // CNN/DM batches
            : throw (info.TryGetProperty("post", out var bad) ? WrongType("info.post", bad, "a string") : Missing("info.post", "a string"));
        string? title = OptionalString(info, "title", "info.title");
        string? subreddit = OptionalString(info, "subreddit", "info.subreddit");

        if (!row.TryGetProperty("summaries", out var summaries)) throw Missing("summaries", "a list of two {\"text\"} objects");
        if (summaries.ValueKind != JsonValueKind.Array) throw WrongType("summaries", summaries, "a list of two {\"text\"} objects");
        if (summaries.GetArrayLength() != 2)
            throw new BadRowException(BadRowReason.InvalidValue, $"field 'summaries' has {summaries.GetArrayLength()} entries (expected 2).");
        var texts = new string[2];
        for (int i = 0; i < 2; i++)
        {
            var summary = summaries[i];
            if (summary.ValueKind != JsonValueKind.Object) throw WrongType($"summaries[{i}]", summary, "an object with \"text\"");
            texts[i] = RequireString(summary, "text", $"summaries[{i}].text");
        }

        if (!row.TryGetProperty("choice", out var choiceElement)) throw Missing("choice", "0 or 1");
        if (choiceElement.ValueKind != JsonValueKind.Number) throw WrongType("choice", choiceElement, "0 or 1");
        if (!choiceElement.TryGetInt32(out int choice) || choice is not (0 or 1))
            throw new BadRowException(BadRowReason.InvalidValue, $"field 'choice' is {choiceElement.GetRawText()} (expected 0 or 1).");

        var query = new System.Text.StringBuilder();
        if (!string.IsNullOrWhiteSpace(subreddit)) query.Append("SUBREDDIT: r/").Append(subreddit.Trim()).Append("\n\n");
        if (!string.IsNullOrWhiteSpace(title)) query.Append("TITLE: ").Append(title.Trim()).Append("\n\n");
        query.Append("POST: ").Append(post.Trim()).Append("\n\nTL;DR:");

        string Response(string text) => string.IsNullOrWhiteSpace(text) ? ""
            : template.RenderResponse([new ChatMessage(ChatMessage.Assistant, text.Trim())]);
        return (template.RenderPrompt(query.ToString()), Response(texts[choice]), Response(texts[1 - choice]));
    }

    static double? OptionalMargin(JsonElement row)
    {
        if (!row.TryGetProperty("margin", out var margin) || margin.ValueKind == JsonValueKind.Null) return null;
        if (margin.ValueKind != JsonValueKind.Number) throw WrongType("margin", margin, "a number");
        double value = margin.GetDouble();
        if (!double.IsFinite(value))
            throw new BadRowException(BadRowReason.InvalidValue, $"field 'margin' is {margin.GetRawText()} (expected a finite number).");
        return value;
    }

    static List<ChatMessage> RequireMessages(JsonElement row, string field)
    {
        if (!row.TryGetProperty(field, out var list)) throw Missing(field, "a list of {\"role\",\"content\"} messages");
        if (list.ValueKind != JsonValueKind.Array) throw WrongType(field, list, "a list of {\"role\",\"content\"} messages");
        var messages = new List<ChatMessage>();
        int i = 0;
        foreach (var item in list.EnumerateArray())
        {
            string path = $"{field}[{i}]";
            if (item.ValueKind != JsonValueKind.Object) throw WrongType(path, item, "a {\"role\",\"content\"} object");
            string role = RequireString(item, "role", path + ".role");
            if (role is not (ChatMessage.System or ChatMessage.User or ChatMessage.Assistant))
                throw new BadRowException(BadRowReason.InvalidValue, $"field '{path}.role' is \"{role}\" (expected \"system\", \"user\" or \"assistant\").");
            messages.Add(new ChatMessage(role, RequireString(item, "content", path + ".content")));
            i++;
        }
        return messages;
    }

    static string RequireString(JsonElement obj, string name, string? path = null)
    {
        path ??= name;
        if (!obj.TryGetProperty(name, out var value)) throw Missing(path, "a string");
        if (value.ValueKind != JsonValueKind.String) throw WrongType(path, value, "a string");
        return value.GetString()!;
    }

    static string? OptionalString(JsonElement obj, string name, string path)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String) throw WrongType(path, value, "a string");
        return value.GetString();
    }

    static void RequireObject(JsonElement row)
    {
        if (row.ValueKind != JsonValueKind.Object)
            throw new BadRowException(BadRowReason.WrongType, $"the row is {Describe(row.ValueKind)} (expected a JSON object).");
    }

    static BadRowException Missing(string path, string expected) =>
        new(BadRowReason.MissingField, $"field '{path}' is missing (expected {expected}).");

    static BadRowException WrongType(string path, JsonElement value, string expected) =>
        new(BadRowReason.WrongType, $"field '{path}' is {Describe(value.ValueKind)} (expected {expected}).");

    static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "a list",
        JsonValueKind.Object => "an object",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };
}
