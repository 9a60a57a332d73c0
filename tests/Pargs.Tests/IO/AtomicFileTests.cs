using Pargs.IO;

namespace Pargs.Tests.IO;

public class AtomicFileTests
{
    [Fact]
    public void A_failed_write_leaves_the_old_file_and_no_temporary_file()
    {
        using var temp = new TempDir();
        string path = temp.File("out.jsonl");
        AtomicFile.WriteAllText(path, "old\n");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.WriteText(path, writer =>
        {
            writer.Write("half of a new fi");
            throw new InvalidOperationException("disk full");
        }));
        Assert.Equal("old\n", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(temp.Path));
    }

    [Fact]
    public void Two_writers_of_one_path_never_tear_it()
    {
        using var temp = new TempDir();
        string path = temp.File("same.jsonl");
        // Each writer's lines are all its own letter; a torn file would mix letters or cut a line.
        string Content(char letter) => string.Concat(Enumerable.Repeat(new string(letter, 99) + "\n", 2000));
        Parallel.For(0, 16, i => AtomicFile.WriteText(path, writer =>
        {
            foreach (char c in Content((char)('a' + i))) writer.Write(c);
        }));
        string final = File.ReadAllText(path);
        Assert.Contains(final, Enumerable.Range(0, 16).Select(i => Content((char)('a' + i))));
        Assert.Equal([path], Directory.GetFiles(temp.Path));
    }

    [Fact]
    public void Temporary_names_are_unique_in_the_target_folder_and_keep_the_extension()
    {
        using var temp = new TempDir();
        string a = AtomicFile.TemporaryPathFor(temp.File("plot.png")), b = AtomicFile.TemporaryPathFor(temp.File("plot.png"));
        Assert.NotEqual(a, b);
        Assert.Equal(temp.Path, Path.GetDirectoryName(a));
        Assert.EndsWith(".png", a);
        Assert.Contains("is a folder", Assert.Throws<PargsException>(() => AtomicFile.WriteAllText(temp.Path, "x")).Message);
    }
}
