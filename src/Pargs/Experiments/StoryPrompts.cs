namespace Pargs.Experiments;

/// <summary>The demo's prompt file (<see cref="Data.PromptFile"/>'s format), with a minimum and maximum count.</summary>
public static class StoryPrompts
{
    /// <summary>The shipped openings (TinyStories style), relative to the data root.</summary>
    public const string Shipped = "data/prompts/story-openings.txt";

    /// <param name="minimum">Fewer prompts is an error (the demo's source file needs 2: one to train on, one to evaluate).</param>
    public static IReadOnlyList<string> Read(string path, int? max = null, int minimum = 1)
    {
        var prompts = Data.PromptFile.Read(path).ToList();
        if (max is { } m) prompts = prompts.Take(m).ToList();
        if (prompts.Count < minimum) throw new PargsException($"{path}: {prompts.Count} prompts found; expected at least {minimum}");
        return prompts;
    }

    /// <summary>
    /// Writes prompts so that <see cref="Read"/> gives them back exactly: a prompt that a plain line would not
    /// carry (a leading # or {, a line break, surrounding whitespace) is written as a JSONL line.
    /// </summary>
    public static void Write(string path, IEnumerable<string> prompts)
    {
        static bool Plain(string p) => p.Length > 0 && p.Trim() == p && !p.StartsWith('#') && !p.StartsWith('{') && !p.Contains('\n') && !p.Contains('\r');
        Pargs.IO.AtomicFile.WriteAllLines(path, prompts.Select(p => Plain(p) ? p : System.Text.Json.JsonSerializer.Serialize(new { prompt = p })));
    }
}
