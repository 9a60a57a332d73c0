namespace Pargs.Evaluation;

/// <summary>
/// Generation speed from the records: tokens/s = Σ tokens / Σ seconds (pooled, so long generations weigh
/// more, as wall-clock does) and seconds per sample = mean seconds, over the records that carry a time. NaN when there
/// are none (records written with `--no-timings`).
/// </summary>
public sealed record Throughput(double TokensPerSecond, double SecondsPerSample, long Tokens, double Seconds, int Samples)
{
    public static Throughput Of(IEnumerable<GenerationRecord> records)
    {
        long tokens = 0;
        double seconds = 0;
        int samples = 0;
        foreach (var r in records)
        {
            if (r.Seconds is not { } s) continue;
            tokens += r.Tokens;
            seconds += s;
            samples++;
        }
        return new Throughput(
            seconds > 0 ? tokens / seconds : double.NaN,
            samples > 0 ? seconds / samples : double.NaN,
            tokens, seconds, samples);
    }
}
