namespace Pargs.Tests;

/// <summary>Where the repository's shipped assets are, found by walking up to the folder holding Pargs.slnx.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string Stories260KFolder => Path.Combine(RepoRoot, "data", "models", "stories260K");
    public static string Stories260KGguf => Path.Combine(Stories260KFolder, "tinyllamas-stories-260k-f32.gguf");
    public static string Stories260KBin => Path.Combine(Stories260KFolder, "stories260K.bin");
    public static string Stories260KTokenizer => Path.Combine(Stories260KFolder, "tok512.bin");
    public static string ShippedPartialRm => Path.Combine(RepoRoot, "data", "models", "stories260K-partial-rm");

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Pargs.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no Pargs.slnx above {AppContext.BaseDirectory}");
    }
}

/// <summary>A fresh temporary folder per test, deleted afterwards.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "pargs-test-" + Guid.NewGuid().ToString("N"));
    public TempDir() => Directory.CreateDirectory(Path);
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
