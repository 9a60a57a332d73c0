using Pargs.Checkpoints;

namespace Pargs.Tests.Cli;

/// <summary>`pargs convert` as a user runs it: a file that loads again, and one-line refusals.</summary>
public sealed class CliConvertTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Converts_the_shipped_model_to_a_gguf_v3_that_pargs_describes()
    {
        string output = _dir.File("stories.gguf");
        var run = PargsCli.Run("convert", PargsCli.Stories260KGguf, "--to", "gguf", "--out", output, "--type", "f16");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("architecture llama", run.Stdout);
        Assert.Equal(3u, GgufFile.Read(output).Version);
        Assert.Equal(new[] { output }, Directory.GetFiles(_dir.Path)); // no temporary left beside it
        var info = PargsCli.Run("info", "--model", output);
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Contains("SentencePieceTokenizer, 512 tokens", info.StdoutFlat);
    }

    [Fact]
    public void Refusals_name_the_option_or_path()
    {
        string output = _dir.File("x.gguf");
        PargsCli.Fails(["convert", PargsCli.Stories260KGguf, "--to", "gguf", "--out", output, "--type", "q5_k"], "--type q5_k is not supported yet");
        // q4_k is written, but stories260K's 64-value rows are not whole K-quant super-blocks: refused by tensor, nothing written.
        PargsCli.Fails(["convert", PargsCli.Stories260KGguf, "--to", "gguf", "--out", output, "--type", "q4_k"], "\"blk.0.attn_q.weight\"", "super-blocks");
        PargsCli.Fails(["convert", PargsCli.Stories260KGguf, "--to", "safetensors", "--out", output], "--to safetensors");
        string missingFolder = _dir.File("no/such/dir/x.gguf");
        PargsCli.Fails(["convert", PargsCli.Stories260KGguf, "--to", "gguf", "--out", missingFolder], missingFolder);
        Assert.Empty(Directory.GetFiles(_dir.Path));
    }
}
