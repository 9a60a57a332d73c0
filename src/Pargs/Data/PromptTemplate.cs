using Pargs.Templates;

namespace Pargs.Data;

/// <summary>
/// How a conversation becomes the text a model reads. The SAME template must be used when the reward model is
/// trained and when prompts are decoded (decoding calls <see cref="RenderPrompt(string)"/> on the user's text),
/// otherwise the reward model scores text in a format it never saw.
/// Each format string holds one <c>{content}</c> placeholder. An assistant turn renders as
/// <see cref="GenerationPrompt"/> + <see cref="AssistantFormat"/>, so "prompt + response" is exactly the
/// rendering of the whole conversation: the prompt ends with the generation prompt, the response is the rest.
/// "auto" is the model's own chat template (<see cref="Chat"/>, a Jinja template from its tokenizer_config.json)
/// when it has one, for instruct models; the format strings are then unused.
/// </summary>
public sealed record PromptTemplate(
    string Name,
    string SystemFormat,
    string UserFormat,
    string AssistantFormat,
    string GenerationPrompt)
{
    const string Placeholder = "{content}";
    public const string AutoName = "auto";

    /// <summary>The model's chat template, for "auto" on a model that has one; null for the built-in formats.</summary>
    public ChatTemplate? Chat { get; init; }

    /// <summary>
    /// True when the rendered text already holds the model's special tokens (a chat template writes
    /// <c>bos_token</c> itself): it is then tokenized without adding them, as transformers' apply_chat_template does.
    /// </summary>
    public bool RendersSpecialTokens => Chat is not null;

    /// <summary>The text as is: TRL's "standard" (non-conversational) format. Meant for single-turn prompts.</summary>
    public static readonly PromptTemplate Plain = new("plain", "{content}\n\n", "{content}", " {content}", "");

    /// <summary>Anthropic HH-RLHF dialogues: <c>"\n\nHuman: {prompt}\n\nAssistant:"</c>, responses start with a space.</summary>
    public static readonly PromptTemplate Hh = new("hh", "{content}", "\n\nHuman: {content}", " {content}", "\n\nAssistant:");

    /// <summary>ChatML (<c>&lt;|im_start|&gt;role\n…&lt;|im_end|&gt;</c>); the end marker is part of the response so the model learns to stop.</summary>
    public static readonly PromptTemplate ChatMl = new("chatml",
        "<|im_start|>system\n{content}<|im_end|>\n",
        "<|im_start|>user\n{content}<|im_end|>\n",
        "{content}<|im_end|>\n",
        "<|im_start|>assistant\n");

    public static IReadOnlyList<PromptTemplate> BuiltIn { get; } = [Plain, Hh, ChatMl];

    /// <summary>
    /// A template by name: a built-in one ("plain", "hh", "chatml"), or "auto" — the chat template of the model at
    /// <paramref name="modelPath"/> (its folder, or a file in it) when its tokenizer_config.json (or
    /// chat_template.jinja) has one, else plain text for a base model. <paramref name="setting"/> names where the
    /// name came from, for the error.
    /// </summary>
    public static PromptTemplate FromName(string name, string setting = "template", string? modelPath = null)
    {
        if (string.Equals(name, AutoName, StringComparison.OrdinalIgnoreCase))
        {
            if (modelPath is null) throw new PargsException($"{setting}: '{AutoName}' reads the model's chat template and needs the model's folder");
            var folder = Directory.Exists(modelPath) ? modelPath : Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".";
            return ChatTemplate.Exists(folder) ? FromChatTemplate(ChatTemplate.FromTokenizerConfig(folder)) : Plain;
        }
        return BuiltIn.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new PargsException(
                $"{setting}: unknown prompt template '{name}': expected one of {string.Join(", ", BuiltIn.Select(t => t.Name))}, {AutoName}.");
    }

    /// <summary>A model's chat template as a prompt template (name "auto").</summary>
    public static PromptTemplate FromChatTemplate(ChatTemplate chat) => new(AutoName, "", "", "", "") { Chat = chat };

    /// <summary>The text a model continues for a single user message: the user turn then the generation prompt.</summary>
    public string RenderPrompt(string userText) => Chat is { } chat
        ? chat.Render([new ChatMessage(ChatMessage.User, userText)], addGenerationPrompt: true)
        : Fill(UserFormat, userText) + GenerationPrompt;

    /// <summary>The prompt messages rendered, then the generation prompt that opens the assistant's answer.</summary>
    public string RenderPrompt(IReadOnlyList<ChatMessage> messages) => Chat is { } chat
        ? chat.Render(messages, addGenerationPrompt: true)
        : RenderMessages(messages) + GenerationPrompt;

    /// <summary>
    /// The completion messages as the continuation of a prompt from <see cref="RenderPrompt(IReadOnlyList{ChatMessage})"/>:
    /// the first message must be the assistant's (its generation prompt is already in the prompt).
    /// </summary>
    public string RenderResponse(IReadOnlyList<ChatMessage> messages)
    {
        if (Chat is { } chat)
            throw new PargsException($"{chat.Source}: a model's chat template renders a response only after its prompt (each template treats turns differently)");
        if (messages.Count == 0 || messages[0].Role != ChatMessage.Assistant)
            throw new ArgumentException("A response must start with an assistant message.", nameof(messages));
        return RenderMessages(messages)[GenerationPrompt.Length..];
    }

    /// <summary>
    /// The completion as the continuation of its prompt: the whole conversation rendered, minus the rendered prompt
    /// (with its generation prompt). A chat template whose conversation does not start with that prompt (one that
    /// rewrites earlier turns) is refused, naming the template.
    /// </summary>
    public string RenderResponse(IReadOnlyList<ChatMessage> prompt, IReadOnlyList<ChatMessage> completion)
    {
        if (Chat is not { } chat) return RenderResponse(completion);
        string promptText = chat.Render(prompt, addGenerationPrompt: true);
        string whole = chat.Render([.. prompt, .. completion], addGenerationPrompt: false);
        if (!whole.StartsWith(promptText, StringComparison.Ordinal))
            throw new PargsException($"{chat.Source}: the conversation with its response does not begin with the prompt as rendered for generation, so the response cannot be cut from it");
        return whole[promptText.Length..];
    }

    /// <summary>The whole conversation as text; every assistant turn is preceded by the generation prompt.</summary>
    public string RenderMessages(IReadOnlyList<ChatMessage> messages)
    {
        if (Chat is { } chat) return chat.Render(messages, addGenerationPrompt: false);
        var text = new System.Text.StringBuilder();
        foreach (var message in messages)
        {
            text.Append(message.Role switch
            {
                ChatMessage.System => Fill(SystemFormat, message.Content),
                ChatMessage.User => Fill(UserFormat, message.Content),
                ChatMessage.Assistant => GenerationPrompt + Fill(AssistantFormat, message.Content),
                _ => throw new ArgumentException(
                    $"Unknown role '{message.Role}': expected system, user or assistant.", nameof(messages)),
            });
        }
        return text.ToString();
    }

    static string Fill(string format, string content) => format.Replace(Placeholder, content, StringComparison.Ordinal);
}
