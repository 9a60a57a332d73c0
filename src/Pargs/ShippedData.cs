namespace Pargs;

/// <summary>
/// Finds what Pargs ships in its <c>data/</c> folder (the stories260K model, the VADER lexicon, prompts):
/// beside the program (the build copies data/ there) or in a parent folder of it or of the current folder
/// (running from a checkout).
/// </summary>
public static class ShippedData
{
    public const string DefaultModel = "data/models/stories260K/tinyllamas-stories-260k-f32.gguf";
    /// <summary>The partial (PARGS) reward model trained on the default model by <c>pargs demo</c>.</summary>
    public const string PartialRewardModel = "data/models/stories260K-partial-rm";

    public static string Find(string relativePath)
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, relativePath);
                if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
            }
        throw new PargsException($"could not find the shipped file {relativePath} beside {AppContext.BaseDirectory} or above {Directory.GetCurrentDirectory()}; pass its path explicitly");
    }
}
