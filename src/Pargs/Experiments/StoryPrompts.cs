namespace Pargs.Experiments;

/// <summary>
/// A prompt file: one prompt per line; blank lines and lines starting with <c>#</c> are skipped; trailing
/// whitespace is trimmed (a trailing space would become its own token and derail a small LM).
/// </summary>
public static class StoryPrompts
{
    /// <summary>The shipped openings (TinyStories style), relative to the data root.</summary>
    public const string Shipped = "data/prompts/story-openings.txt";

    /// <param name="minimum">Fewer prompts is an error (the demo's source file needs 2: one to train on, one to evaluate).</param>
    public static IReadOnlyList<string> Read(string path, int? max = null, int minimum = 1)
    {
        if (!File.Exists(path)) throw new PargsException($"{path}: prompt file not found (expected one prompt per line)");
        var prompts = File.ReadLines(path)
            .Select(line => line.TrimEnd())
            .Where(line => line.Trim().Length > 0 && !line.TrimStart().StartsWith('#'))
            .ToList();
        if (max is { } m) prompts = prompts.Take(m).ToList();
        if (prompts.Count < minimum) throw new PargsException($"{path}: {prompts.Count} prompts found; expected at least {minimum}");
        return prompts;
    }

    public static void Write(string path, IEnumerable<string> prompts)
    {
        File.WriteAllLines(path + ".tmp", prompts);
        File.Move(path + ".tmp", path, overwrite: true);
    }
}
