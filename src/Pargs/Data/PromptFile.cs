using System.Text.Json;

namespace Pargs.Data;

/// <summary>
/// A file of prompts, as `pargs generate --prompts`, the demo and `pargs experiment` read it: one prompt per line,
/// or a JSONL line (one starting with <c>{</c>) with a string field "prompt" or "instruction". Blank lines and
/// lines starting with <c>#</c> are skipped (a prompt that starts with # can be written as JSONL); trailing
/// whitespace of a plain line is dropped (a trailing space becomes a token of its own and derails a small LM).
/// </summary>
public static class PromptFile
{
    /// <summary>Longest line, in bytes, read as a prompt: a longer one is refused before it is tokenized.</summary>
    public const int DefaultMaxPromptBytes = 256 << 10;

    /// <summary>
    /// The prompts of <paramref name="path"/>. The file must be UTF-8 (invalid bytes are refused with the line
    /// number, not replaced by U+FFFD), and no line may exceed <paramref name="maxPromptBytes"/>.
    /// </summary>
    public static IReadOnlyList<string> Read(string path, int maxPromptBytes = DefaultMaxPromptBytes)
    {
        if (Directory.Exists(path)) throw new PargsException($"{path}: is a folder; expected a prompt file (one prompt per line, or JSONL)");
        if (!File.Exists(path)) throw new PargsException($"{path}: prompt file not found (expected one prompt per line, or JSONL)");
        var prompts = new List<string>();
        foreach (var (lineNumber, line, bytes) in JsonlLines.Read(path, maxPromptBytes, "a prompt file"))
        {
            if (line is null)
                throw new PargsException($"{path}:{lineNumber}: the line is {bytes} bytes, over the limit of {maxPromptBytes} bytes per prompt");
            string text = line.Trim();
            if (text.Length == 0 || text.StartsWith('#')) continue;
            prompts.Add(text.StartsWith('{') ? FromJson(line, path, lineNumber) : line.TrimEnd());
        }
        if (prompts.Count == 0) throw new PargsException($"{path}: no prompts in the file");
        return prompts;
    }

    static string FromJson(string line, string path, int lineNumber)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (!Pargs.Json.CheckedJson.StringsAreValid(root, out string? problem)) throw new PargsException($"{path}:{lineNumber}: {problem}");
            if (root.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.String) return p.GetString()!;
            if (root.TryGetProperty("instruction", out var i) && i.ValueKind == JsonValueKind.String) return i.GetString()!;
            throw new PargsException($"{path}:{lineNumber}: expected a string field \"prompt\" or \"instruction\"");
        }
        catch (JsonException e)
        {
            throw new PargsException($"{path}:{lineNumber}: invalid JSON ({e.Message})");
        }
    }
}
