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

    public static void Write(string path, IEnumerable<string> prompts)
    {
        File.WriteAllLines(path + ".tmp", prompts);
        File.Move(path + ".tmp", path, overwrite: true);
    }
}
