using System.Diagnostics;
using System.Text;
using Pargs.Data;
using Pargs.Evaluation;

namespace Pargs.Tests.Hostile;

/// <summary>Hostile data files (issue 13): length caps before parsing or tokenizing, strict UTF-8, clear messages.</summary>
public class HostileDataTests
{
    static string Refused(Action read) => Assert.Throws<PargsException>(read).Message;

    const string GoodRow = """{"prompt": "Once", "chosen": " upon a time", "rejected": " there was"}""";

    [Fact]
    public void A_50MB_preference_row_is_refused_or_skipped_by_line_before_parsing()
    {
        using var temp = new TempDir();
        string path = temp.File("big.jsonl");
        using (var writer = new StreamWriter(path, false, new UTF8Encoding(false)))
        {
            writer.Write(GoodRow + "\n");
            writer.Write("{\"prompt\": \"x\", \"chosen\": \"");
            var chunk = new string('a', 1 << 20);
            for (int i = 0; i < 50; i++) writer.Write(chunk);
            writer.Write("\", \"rejected\": \"b\"}\n");
            writer.Write(GoodRow + "\n");
        }
        var clock = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        string message = Refused(() => PreferenceReader.Read(path));
        Assert.StartsWith($"{path}:2: the row is {50 * (1 << 20) + 46} bytes, over the limit of {1 << 20} bytes per row", message);
        var skipped = PreferenceReader.Read(path, new PreferenceReadOptions { OnBadRow = BadRowPolicy.Skip });
        Assert.Equal(2, skipped.Pairs.Count);
        Assert.Equal(BadRowReason.TooLong, Assert.Single(skipped.Report.Skipped).Reason);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 40L << 20, "the long row must not be held in memory");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public void Prompt_files_refuse_invalid_utf8_and_overlong_lines_by_line()
    {
        using var temp = new TempDir();
        string bad = temp.File("prompts.txt");
        File.WriteAllBytes(bad, [.. "Once upon a time\n"u8, (byte)'T', 0xC3, 0x28, (byte)'\n']);
        Assert.StartsWith($"{bad}:2: invalid UTF-8", Refused(() => PromptFile.Read(bad)));
        string big = temp.File("big.txt");
        File.WriteAllText(big, "Once\n" + new string('a', PromptFile.DefaultMaxPromptBytes + 1) + "\n");
        Assert.Equal($"{big}:2: the line is {PromptFile.DefaultMaxPromptBytes + 1} bytes, over the limit of {PromptFile.DefaultMaxPromptBytes} bytes per prompt",
            Refused(() => PromptFile.Read(big)));
    }

    [Fact]
    public void Generation_files_refuse_invalid_utf8_by_line()
    {
        using var temp = new TempDir();
        string path = temp.File("generations.jsonl");
        File.WriteAllBytes(path, [.. "{\"instruction\": \"a\", \"output\": \"b"u8, 0xFF, .. "\", \"method\": \"greedy\"}\n"u8]);
        Assert.StartsWith($"{path}:1: invalid UTF-8", Refused(() => GenerationJsonl.Read(path)));
        Assert.Contains("is a folder", Refused(() => GenerationJsonl.Read(temp.Path)));
    }

    [Fact]
    public void A_folder_given_as_data_is_named_a_folder_not_a_missing_file()
    {
        using var temp = new TempDir();
        Assert.Equal($"{temp.Path}: is a folder; expected a .jsonl or .jsonl.gz preference file.", Refused(() => PreferenceReader.Read(temp.Path)));
    }
}
