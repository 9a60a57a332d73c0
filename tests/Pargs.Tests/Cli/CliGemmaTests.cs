using Pargs.Models.Families.Gemma;

namespace Pargs.Tests.Cli;

/// <summary>
/// `pargs info` on a Gemma checkpoint shows the Gemma fields it honours. (Gemma reward models through train-rm and
/// generate --method pargs: CliFamilyRewardModelTests.)
/// </summary>
public class CliGemmaTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Info_prints_the_honoured_gemma_fields()
    {
        string lm = _dir.File("gemma3");
        GemmaReferenceCheckpoints.Write("gemma3", lm);
        var run = PargsCli.Succeeds("info", "--model", lm);
        foreach (var field in new[] { "query_pre_attn_scalar", "final_logit_softcapping", "sliding_window", "layer_types", "rope_local_base_freq", "q_norm" })
            Assert.Contains(field, run.Stdout);
        Assert.Contains("SSGS", run.StdoutFlat);
    }
}
