using Pargs.Data;

namespace Pargs.Tests.Data;

public class PromptFileTests
{
    [Fact]
    public void Plain_lines_comments_and_jsonl_lines_read_the_same_everywhere()
    {
        using var temp = new TempDir();
        string path = temp.File("prompts.txt");
        File.WriteAllText(path, "# a comment\n\nOnce upon a time  \n{\"prompt\": \"# not a comment  \"}\n   \n{\"instruction\": \"Tim was\"}\r\n");
        Assert.Equal(["Once upon a time", "# not a comment  ", "Tim was"], PromptFile.Read(path));
        // The demo's and the experiment's reader is the same one.
        Assert.Equal(PromptFile.Read(path), Pargs.Experiments.StoryPrompts.Read(path));
    }

    [Fact]
    public void Written_prompts_read_back_exactly()
    {
        using var temp = new TempDir();
        string path = temp.File("eval.txt");
        string[] prompts = ["Once upon a time", "# a heading", "{braces}", "two\nlines", " padded ", "naïve \"quotes\""];
        Pargs.Experiments.StoryPrompts.Write(path, prompts);
        Assert.Equal(prompts, PromptFile.Read(path));
        Assert.Equal("Once upon a time", File.ReadLines(path).First()); // plain prompts stay plain lines
    }

    [Fact]
    public void Bad_files_name_the_path_and_line()
    {
        using var temp = new TempDir();
        Assert.Contains("is a folder", Assert.Throws<PargsException>(() => PromptFile.Read(temp.Path)).Message);
        string bad = temp.File("bad.jsonl");
        File.WriteAllText(bad, "Once\n{\"prompt\": 3}\n");
        Assert.Contains($"{bad}:2", Assert.Throws<PargsException>(() => PromptFile.Read(bad)).Message);
        string broken = temp.File("broken.jsonl");
        File.WriteAllText(broken, "{\"prompt\": \"a\"\n");
        Assert.Contains($"{broken}:1: invalid JSON", Assert.Throws<PargsException>(() => PromptFile.Read(broken)).Message);
        string empty = temp.File("empty.txt");
        File.WriteAllText(empty, "# only a comment\n");
        Assert.Contains("no prompts", Assert.Throws<PargsException>(() => PromptFile.Read(empty)).Message);
    }
}
