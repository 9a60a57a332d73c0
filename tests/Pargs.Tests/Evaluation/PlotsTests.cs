using Pargs.Evaluation;

namespace Pargs.Tests.Evaluation;

public sealed class PlotsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pargs-plots-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static MethodReportRow Row(string method, double? w, double mean, double se, double ppl) =>
        new(method, w, 10, new MeanWithError(mean, se * Math.Sqrt(10), se, 10), null, 0.5, double.NaN, ppl,
            new Throughput(100, 0.1, 100, 1, 10));

    private static readonly MethodReportRow[] Rows =
    {
        Row("topk", null, 0.1, 0.02, 5.0),
        Row("pargs", 0.5, 0.2, 0.03, 5.5), Row("pargs", 1, 0.35, 0.03, 6.0), Row("pargs", 2, 0.5, 0.04, 7.5),
        Row("args", 0.5, 0.15, 0.03, 5.2), Row("args", 1, 0.25, 0.03, 5.9), Row("args", 2, 0.3, 0.05, 8.0),
    };

    private static void AssertImages((string Png, string Svg) files, string stem)
    {
        Assert.Equal(stem + ".png", files.Png);
        Assert.Equal(stem + ".svg", files.Svg);
        var png = File.ReadAllBytes(files.Png);
        Assert.True(png.Length > 1000);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.Contains("<svg", File.ReadAllText(files.Svg));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(stem)!, "*.tmp.*"));
    }

    [Fact]
    public void FrontierWritesOnePngWithBothPanels()
    {
        var rows = Rows.Select(r => r.Method == "args" ? r : r with { KlToBase = new MeanWithError(1.5 * (r.W ?? 0.1), 0.3, 0.1, 10) }).ToList();
        var png = Plots.Frontier(Path.Combine(_dir, "frontier"), rows);
        Assert.Equal(Path.Combine(_dir, "frontier.png"), png);
        var bytes = File.ReadAllBytes(png);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        // Two panels side by side: the PNG's IHDR width (bytes 16–19, big-endian) is twice one plot's.
        Assert.Equal(2 * Plots.Width, (bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp.*"));
    }

    [Fact]
    public void RewardVsWWritesPngAndSvg()
    {
        var stem = Path.Combine(_dir, "reward_vs_w");
        AssertImages(Plots.RewardVsW(stem + ".png", Rows), stem);
    }

    [Fact]
    public void RewardVsPerplexityWritesPngAndSvg()
    {
        var stem = Path.Combine(_dir, "reward_vs_ppl");
        AssertImages(Plots.RewardVsPerplexity(stem, Rows), stem);
    }

    [Fact]
    public void PrefixAccuracyWritesPngAndSvg()
    {
        var stem = Path.Combine(_dir, "prefix_accuracy");
        var curves = new Dictionary<string, IReadOnlyList<PrefixAccuracyPoint>>
        {
            ["full"] = new[] { new PrefixAccuracyPoint(4, 0.52), new(8, 0.6), new(16, 0.7), new(32, 0.8) },
            ["partial"] = new[] { new PrefixAccuracyPoint(4, 0.62), new(8, 0.68), new(16, 0.74), new(32, 0.79) },
        };
        AssertImages(Plots.PrefixAccuracy(stem, curves), stem);
    }
}
