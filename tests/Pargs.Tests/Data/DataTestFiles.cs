using System.IO.Compression;
using System.Text;

namespace Pargs.Tests.Data;

/// <summary>Small files written by the tests in a fresh temp folder, and the path of the shipped HH-RLHF file.</summary>
public sealed class DataTestFiles : IDisposable
{
    public string Folder { get; } = Directory.CreateTempSubdirectory("pargs-data-tests-").FullName;

    public string Jsonl(string name, params string[] lines)
    {
        string path = Path.Combine(Folder, name);
        File.WriteAllText(path, string.Join("\n", lines) + "\n", new UTF8Encoding(false));
        return path;
    }

    public string Gzip(string name, params string[] lines)
    {
        string path = Path.Combine(Folder, name);
        using (var file = File.Create(path))
        using (var gz = new GZipStream(file, CompressionLevel.Optimal))
            gz.Write(Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n"));
        return path;
    }

    public string Bytes(string name, byte[] bytes)
    {
        string path = Path.Combine(Folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public static string HhRlhfHarmlessTest
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Pargs.slnx")))
                    return Path.Combine(dir.FullName, "data", "datasets", "hh-rlhf-harmless-base-test", "test.jsonl.gz");
            throw new InvalidOperationException("Pargs.slnx not found above " + AppContext.BaseDirectory);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
    }
}
