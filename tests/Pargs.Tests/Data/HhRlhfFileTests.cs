using Pargs.Data;

namespace Pargs.Tests.Data;

/// <summary>The shipped Anthropic HH-RLHF harmless-base test split (2,312 rows), read for real.</summary>
public class HhRlhfFileTests
{
    static readonly string Path = DataTestFiles.HhRlhfHarmlessTest;

    [Fact]
    public void Skip_mode_reads_every_row_and_skips_exactly_the_eight_bad_ones()
    {
        var (pairs, report) = PreferenceReader.Read(Path, new PreferenceReadOptions { OnBadRow = BadRowPolicy.Skip });

        Assert.Equal(PreferenceFormat.ImplicitPrompt, report.Format);
        Assert.Equal(2312, report.RowsRead);
        Assert.Equal(2304, report.RowsKept);
        Assert.Equal(2304, pairs.Count);
        // Found by inspecting the file: 4 rows whose chosen answer is a single space, 4 whose rejected dialogue
        // differs from the chosen one before chosen's last "\n\nAssistant:".
        Assert.Equal([87, 517, 926, 1104], report.Skipped.Where(s => s.Reason == BadRowReason.EmptyResponse).Select(s => s.Line));
        Assert.Equal([1255, 1689, 1953, 2037], report.Skipped.Where(s => s.Reason == BadRowReason.PromptMismatch).Select(s => s.Line));
        Assert.Equal(8, report.RowsSkipped);
        Assert.All(report.Skipped, s => Assert.Contains($"test.jsonl.gz:{s.Line}:", s.Message));

        Assert.All(pairs, p =>
        {
            Assert.StartsWith("\n\nHuman:", p.Prompt);
            Assert.EndsWith("\n\nAssistant:", p.Prompt);
            Assert.False(string.IsNullOrWhiteSpace(p.Chosen));
            Assert.False(string.IsNullOrWhiteSpace(p.Rejected));
            Assert.NotEqual(p.Chosen, p.Rejected);
            Assert.DoesNotContain("\n\nAssistant:", p.Chosen); // the prompt took the LAST assistant turn
        });
        Assert.Equal(Enumerable.Range(1, 2312).Except(report.Skipped.Select(s => s.Line)), pairs.Select(p => p.SourceLine));
    }

    [Fact]
    public void Fail_mode_stops_at_the_first_empty_response_naming_file_line_and_field()
    {
        var error = Assert.Throws<PargsException>(() => PreferenceReader.Read(Path));
        Assert.Contains("test.jsonl.gz:87:", error.Message);
        Assert.Contains("'chosen'", error.Message);
        Assert.Contains("empty", error.Message);
    }

    [Fact]
    public void First_row_splits_into_prompt_and_responses_that_rebuild_the_dialogues()
    {
        var (pairs, _) = PreferenceReader.Read(Path, new PreferenceReadOptions { OnBadRow = BadRowPolicy.Skip });
        using var raw = new StreamReader(new System.IO.Compression.GZipStream(File.OpenRead(Path), System.IO.Compression.CompressionMode.Decompress));
        using var row = System.Text.Json.JsonDocument.Parse(raw.ReadLine()!);
        var first = pairs[0];
        Assert.Equal(1, first.SourceLine);
        Assert.Equal(row.RootElement.GetProperty("chosen").GetString(), first.Prompt + first.Chosen);
        Assert.Equal(row.RootElement.GetProperty("rejected").GetString(), first.Prompt + first.Rejected);
        Assert.StartsWith(" ", first.Chosen); // HH answers follow "Assistant:" after a space
        Assert.Null(first.Margin);
    }
}
