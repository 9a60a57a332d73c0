using System.Text.Json;
using Pargs.Evaluation;

namespace Pargs.Tests.Evaluation;

public sealed class GenerationJsonlTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pargs-jsonl-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void RoundTripsRecordsIncludingExtraFieldsAndUnicode()
    {
        var path = Path.Combine(_dir, "generations.jsonl");
        var extra = JsonDocument.Parse("""{"rm":"partial","temperature":0.7}""").RootElement;
        var records = new[]
        {
            new GenerationRecord
            {
                Instruction = "Once upon a time", Output = " she smiled. \"Café\" 😊\nEnd", Generator = "stories260K/pargs",
                PromptId = "p1", Method = "pargs", K = 10, W = 1.5, Seed = 42, Reward = 0.25, Tokens = 12, Seconds = 0.5,
                Extra = new() { ["rm"] = extra.GetProperty("rm"), ["temperature"] = extra.GetProperty("temperature") },
            },
            new GenerationRecord { Instruction = "Lily", Output = "", Method = "topk", Tokens = 0, Seconds = 0.1 },
        };
        GenerationJsonl.Write(path, records);
        Assert.False(File.Exists(path + ".tmp"));
        Assert.Equal(2, File.ReadAllLines(path).Length);

        var back = GenerationJsonl.Read(path);
        Assert.Equal(2, back.Count);
        var first = back[0];
        Assert.Equal(records[0].Output, first.Output);
        Assert.Equal((records[0].PromptId, records[0].K, records[0].W, records[0].Seed, records[0].Reward, records[0].Tokens, records[0].Seconds),
            (first.PromptId, first.K, first.W, first.Seed, first.Reward, first.Tokens, first.Seconds));
        Assert.Equal("partial", first.Extra!["rm"].GetString());
        Assert.Equal(0.7, first.Extra["temperature"].GetDouble());
        Assert.Null(back[1].Reward);
        Assert.Null(back[1].W);
        Assert.Equal("Lily", back[1].PromptKey);   // no prompt_id: pairs by instruction
        Assert.Contains("\"instruction\":", File.ReadAllText(path));
    }

    [Theory]
    [InlineData("{\"instruction\":\"a\",\"output\":\"b\",\"method\":\"m\"}\n{not json}", 2)]
    [InlineData("\n{\"instruction\":\"a\",\"method\":\"m\"}", 2)]
    [InlineData("{\"instruction\":\"a\",\"output\":\"b\"}", 1)]
    [InlineData("[1,2]", 1)]
    [InlineData("{\"instruction\":\"a\",\"output\":\"b\",\"method\":\"m\",\"tokens\":\"many\"}", 1)]
    public void ReaderErrorsNameFileAndLine(string content, int badLine)
    {
        var path = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllText(path, content);
        var e = Assert.Throws<PargsException>(() => GenerationJsonl.Read(path));
        Assert.Contains($"{path}:{badLine}:", e.Message);
        Assert.DoesNotContain("System.", e.Message); // the file's terms, not .NET type names
    }

    [Fact]
    public void A_field_of_the_wrong_type_is_named_with_the_type_expected()
    {
        var path = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllText(path, "{\"instruction\":\"a\",\"output\":\"b\",\"method\":\"m\",\"w\":\"high\"}");
        var e = Assert.Throws<PargsException>(() => GenerationJsonl.Read(path));
        Assert.Contains("field 'w' has a value of the wrong type (expected a number)", e.Message);
    }
}
