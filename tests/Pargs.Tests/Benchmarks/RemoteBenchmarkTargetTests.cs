using Pargs.Server;

namespace Pargs.Tests.Benchmarks;

/// <summary>`pargs bench remote` states its verdict on issue 18's target (at 16 rows in flight, remote ≥ 0.6× local) itself.</summary>
public sealed class RemoteBenchmarkTargetTests
{
    [Fact]
    public void The_target_note_gives_every_level_their_mean_and_the_verdict_on_the_mean()
    {
        var note = RemoteBenchmark.TargetNote([
            (true, 1, 0.43), (true, 4, 0.50), (false, 4, 0.91), (true, 1, 0.56), (true, 4, 0.72), (true, 4, 0.56), (true, 1, 0.46),
        ]);
        Assert.Equal("Target at 16 rows in flight, remote ≥ 0.60× local (issue 18; both models remote is the issue's case): "
            + "remote LM + RM, one batch: 0.43, 0.56, 0.46 (mean 0.483) — not met; "
            + "remote LM + RM, 4 client decoders: 0.50, 0.72, 0.56 (mean 0.593) — not met; "
            + "remote LM (RM local), 4 client decoders: 0.91 — met.", note);
    }

    [Fact]
    public void A_mean_that_rounds_to_the_target_but_is_below_it_is_not_met_and_no_level_at_16_rows_gives_no_note()
    {
        Assert.EndsWith("(mean 0.598) — not met.", RemoteBenchmark.TargetNote([(true, 4, 0.597), (true, 4, 0.599)]));
        Assert.EndsWith("(mean 0.600) — met.", RemoteBenchmark.TargetNote([(true, 4, 0.6), (true, 4, 0.6)]));
        Assert.Null(RemoteBenchmark.TargetNote([]));
    }
}
