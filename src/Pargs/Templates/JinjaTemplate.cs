using System.Collections;
using System.Text.Json;

namespace Pargs.Templates;

/// <summary>
/// A parsed Jinja template, rendered the way transformers renders chat templates: an immutable sandbox with
/// trim_blocks and lstrip_blocks, Jinja's default undefined, and transformers' <c>tojson</c>,
/// <c>raise_exception</c> and <c>strftime_now</c>. The subset covers what real chat templates use; anything else
/// (an unknown statement, filter, test or method) is an error naming the template and line, never ignored.
/// </summary>
public sealed class JinjaTemplate
{
    readonly List<JinjaNode> nodes;

    /// <summary>Where the template came from (a file, a file and template name), used in every error message.</summary>
    public string Source { get; }

    JinjaTemplate(List<JinjaNode> nodes, string source)
    {
        this.nodes = nodes;
        Source = source;
    }

    /// <summary>Parses <paramref name="text"/>; a syntax error is a <see cref="PargsException"/> naming <paramref name="source"/> and the line.</summary>
    public static JinjaTemplate Parse(string text, string source)
    {
        if (text.Length > MaxTemplateChars)
            throw new PargsException($"chat template {source}: {text.Length} characters, more than the {MaxTemplateChars} a template may have");
        try
        {
            return new(JinjaParser.Parse(text, source), source);
        }
        catch (InsufficientExecutionStackException)
        {
            throw new PargsException($"chat template {source}: the template nests too deeply to parse");
        }
    }

    /// <summary>Real chat templates are a few kB to tens of kB; a bound keeps an untrusted one from exhausting memory.</summary>
    public const int MaxTemplateChars = 4 * 1024 * 1024;

    /// <summary>
    /// Renders with <paramref name="variables"/> (converted by <see cref="ToTemplateValue"/>). <paramref name="now"/>
    /// is the clock of <c>strftime_now</c> (default: local time, as transformers uses).
    /// </summary>
    public string Render(IEnumerable<KeyValuePair<string, object?>> variables, Func<DateTime>? now = null)
    {
        var globals = new JinjaScope(null);
        JinjaGlobals.AddTo(globals, now ?? (() => DateTime.Now));
        var scope = new JinjaScope(globals);
        foreach (var (name, value) in variables) scope.Set(name, ToTemplateValue(value));
        try
        {
            return new JinjaInterpreter().Render(nodes, scope);
        }
        catch (JinjaRuntimeException e)
        {
            throw JinjaErrors.At(Source, e.Line, e.Message);
        }
        catch (InsufficientExecutionStackException)
        {
            throw new PargsException($"chat template {Source}: the template nests too deeply to render");
        }
    }

    /// <summary>
    /// A .NET value as a template value: strings, bools, integers (as long), floating point (as double), null,
    /// <see cref="JsonElement"/>, dictionaries with string keys (insertion order kept) and other sequences (as lists).
    /// </summary>
    public static object? ToTemplateValue(object? value) => value switch
    {
        null => null,
        string or bool or long or double => value,
        int i => (long)i,
        short s => (long)s,
        byte b => (long)b,
        uint u => (long)u,
        float f => (double)f,
        decimal m => (double)m,
        JsonElement element => JinjaJson.FromJson(element),
        Pargs.Data.ChatMessage message => new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = message.Role, ["content"] = message.Content },
        System.Text.Json.Nodes.JsonNode node => JinjaJson.FromJson(JsonSerializer.SerializeToElement(node)),
        IDictionary<string, object?> dict => dict.ToDictionary(kv => JinjaDictKeys.Encode(kv.Key, 0), kv => ToTemplateValue(kv.Value), StringComparer.Ordinal),
        IReadOnlyDictionary<string, object?> dict => dict.ToDictionary(kv => JinjaDictKeys.Encode(kv.Key, 0), kv => ToTemplateValue(kv.Value), StringComparer.Ordinal),
        IEnumerable sequence => sequence.Cast<object?>().Select(ToTemplateValue).ToList(),
        _ => throw new ArgumentException($"a template variable of type {value.GetType().Name} is not supported"),
    };
}
