using System.Text.Json;
using Pargs.Data;

namespace Pargs.Templates;

/// <summary>
/// A model's own chat template (the Jinja <c>chat_template</c> of its <c>tokenizer_config.json</c>), rendered as
/// transformers' <c>apply_chat_template(messages, add_generation_prompt=…)</c> does: with <c>messages</c>,
/// <c>add_generation_prompt</c>, <c>tools</c> and <c>documents</c> (None unless given), the tokenizer's special
/// tokens (<c>bos_token</c>, <c>eos_token</c>, …) and any extra variables (e.g. <c>enable_thinking</c>).
/// </summary>
public sealed class ChatTemplate
{
    public const string ConfigFileName = "tokenizer_config.json";
    /// <summary>Newer transformers saves the template beside the config in this file; it is used when the config has none.</summary>
    public const string TemplateFileName = "chat_template.jinja";

    static readonly string[] SpecialTokenNames = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    readonly JinjaTemplate template;
    readonly Dictionary<string, object?> specialTokens;

    /// <summary>The template's source text.</summary>
    public string Text { get; }
    /// <summary>Where the template came from, as errors name it.</summary>
    public string Source => template.Source;
    /// <summary>The clock of <c>strftime_now</c>; tests fix it.</summary>
    public Func<DateTime> Now { get; set; } = () => DateTime.Now;

    public ChatTemplate(string text, string source, IReadOnlyDictionary<string, string>? specialTokens = null)
    {
        Text = text;
        template = JinjaTemplate.Parse(text, source);
        this.specialTokens = specialTokens?.ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal) ?? [];
    }

    ChatTemplate(string text, string source, Dictionary<string, object?> specialTokens)
    {
        Text = text;
        template = JinjaTemplate.Parse(text, source);
        this.specialTokens = specialTokens;
    }

    /// <summary>The special tokens passed to the template, by their variable names (bos_token, eos_token...).</summary>
    public IReadOnlyDictionary<string, object?> SpecialTokens => specialTokens;

    /// <summary>Whether the model folder (or the tokenizer_config.json path) has a chat template.</summary>
    public static bool Exists(string folderOrConfig)
    {
        var (config, folder) = Locate(folderOrConfig);
        if (File.Exists(Path.Combine(folder, TemplateFileName))) return true;
        if (!File.Exists(config)) return false;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(config));
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("chat_template", out var t) && t.ValueKind != JsonValueKind.Null;
        }
        catch (JsonException) { return false; }
    }

    /// <summary>
    /// Reads the chat template of a model: <paramref name="path"/> is a tokenizer_config.json or the folder holding
    /// it. <c>chat_template</c> is a string or a list of <c>{"name", "template"}</c> (the one named
    /// <paramref name="name"/>, by default "default"); without one, the folder's chat_template.jinja is used.
    /// </summary>
    public static ChatTemplate FromTokenizerConfig(string path, string name = "default")
    {
        var (configPath, folder) = Locate(path);
        if (!File.Exists(configPath)) throw new PargsException($"{configPath}: file not found (a chat template needs the model's tokenizer_config.json)");
        JsonDocument document;
        try { document = JsonDocument.Parse(File.ReadAllBytes(configPath)); }
        catch (JsonException e) { throw new PargsException($"{configPath}: invalid JSON ({e.Message})"); }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new PargsException($"{configPath}: expected a JSON object");
            var specialTokens = ReadSpecialTokens(root, configPath);
            if (root.TryGetProperty("chat_template", out var chatTemplate) && chatTemplate.ValueKind != JsonValueKind.Null)
            {
                if (chatTemplate.ValueKind == JsonValueKind.String)
                    return new ChatTemplate(chatTemplate.GetString()!, configPath, specialTokens);
                if (chatTemplate.ValueKind == JsonValueKind.Array)
                {
                    var names = new List<string>();
                    foreach (var entry in chatTemplate.EnumerateArray())
                    {
                        if (entry.ValueKind != JsonValueKind.Object
                            || !entry.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                            || !entry.TryGetProperty("template", out var t) || t.ValueKind != JsonValueKind.String)
                            throw new PargsException($"{configPath}: chat_template: each entry of the list must be {{\"name\": string, \"template\": string}}");
                        names.Add(n.GetString()!);
                        if (n.GetString() == name) return new ChatTemplate(t.GetString()!, $"{configPath} (template '{name}')", specialTokens);
                    }
                    throw new PargsException($"{configPath}: chat_template has no template named '{name}' (it has: {string.Join(", ", names)})");
                }
                throw new PargsException($"{configPath}: chat_template must be a string or a list of named templates, not {chatTemplate.ValueKind}");
            }
            var jinjaFile = Path.Combine(folder, TemplateFileName);
            if (File.Exists(jinjaFile)) return new ChatTemplate(File.ReadAllText(jinjaFile), jinjaFile, specialTokens);
            throw new PargsException($"{configPath}: no chat_template (and no {TemplateFileName} beside it): this model has no chat template; use a built-in --template");
        }
    }

    static (string Config, string Folder) Locate(string path) => Directory.Exists(path)
        ? (Path.Combine(path, ConfigFileName), path)
        : (path, Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".");

    /// <summary>Special tokens as transformers' special_tokens_map: a string, or an AddedToken object's "content".</summary>
    static Dictionary<string, object?> ReadSpecialTokens(JsonElement root, string configPath)
    {
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var name in SpecialTokenNames)
        {
            if (!root.TryGetProperty(name, out var token) || token.ValueKind == JsonValueKind.Null) continue;
            tokens[name] = TokenContent(token, $"{configPath}: {name}");
        }
        if (root.TryGetProperty("additional_special_tokens", out var additional) && additional.ValueKind == JsonValueKind.Array)
            tokens["additional_special_tokens"] = additional.EnumerateArray().Select(t => (object?)TokenContent(t, $"{configPath}: additional_special_tokens")).ToList();
        return tokens;
    }

    static string TokenContent(JsonElement token, string where)
    {
        if (token.ValueKind == JsonValueKind.String) return token.GetString()!;
        if (token.ValueKind == JsonValueKind.Object && token.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
            return content.GetString()!;
        throw new PargsException($"{where}: expected a string or an AddedToken object with \"content\"");
    }

    /// <summary>Renders role/content messages (TRL's conversational format).</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IDictionary<string, object?>? extra = null) =>
        RenderConversation(messages.Select(m => (object?)new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["role"] = m.Role,
            ["content"] = m.Content,
        }).ToList(), addGenerationPrompt, extra);

    /// <summary>
    /// Renders messages given as template values: dictionaries or JSON objects with any fields the template reads
    /// (<c>tool_calls</c>, <c>reasoning_content</c>, list-of-parts <c>content</c>...). <paramref name="extra"/>
    /// adds or overrides variables (<c>tools</c>, <c>documents</c>, <c>enable_thinking</c>...).
    /// </summary>
    public string RenderConversation(IEnumerable<object?> messages, bool addGenerationPrompt, IDictionary<string, object?>? extra = null)
    {
        var variables = new Dictionary<string, object?>(specialTokens, StringComparer.Ordinal)
        {
            ["messages"] = messages.Select(JinjaTemplate.ToTemplateValue).ToList(),
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (extra != null)
            foreach (var (key, value) in extra) variables[key] = value;
        return template.Render(variables, Now);
    }
}
