using ScottPlot;

namespace Pargs.Evaluation;

/// <summary>One point of <see cref="Plots.PrefixAccuracy"/>: accuracy of a reward model on pairs cut at a prefix length.</summary>
public readonly record struct PrefixAccuracyPoint(double PrefixLength, double Accuracy);

/// <summary>
/// The report's figures (ScottPlot 5). Each method writes <c>path.png</c> and <c>path.svg</c> (an extension on
/// <paramref name="path"/> is replaced) atomically and returns both paths.
/// </summary>
public static class Plots
{
    public const int Width = 800, Height = 500;

    /// <summary>Gold reward against guidance weight w, one line per method, error bars = SE. Rows without a
    /// w (e.g. top-k sampling) are drawn as horizontal dashed lines at their mean reward.</summary>
    public static (string Png, string Svg) RewardVsW(string path, IReadOnlyList<MethodReportRow> rows, string rewardLabel = "gold reward")
    {
        var plot = new Plot();
        foreach (var group in rows.GroupBy(r => r.Method))
        {
            var weighted = group.Where(r => r.W.HasValue && double.IsFinite(r.Reward.Mean)).OrderBy(r => r.W).ToList();
            if (weighted.Count > 0)
            {
                double[] xs = weighted.Select(r => r.W!.Value).ToArray();
                double[] ys = weighted.Select(r => r.Reward.Mean).ToArray();
                double[] errors = weighted.Select(r => double.IsFinite(r.Reward.StandardError) ? r.Reward.StandardError : 0).ToArray();
                var line = plot.Add.Scatter(xs, ys);
                line.LegendText = group.Key;
                var bars = plot.Add.ErrorBar(xs, ys, errors);
                bars.Color = line.Color;
            }
            foreach (var flat in group.Where(r => !r.W.HasValue && double.IsFinite(r.Reward.Mean)))
            {
                var h = plot.Add.HorizontalLine(flat.Reward.Mean);
                h.LinePattern = LinePattern.Dashed;
                h.LegendText = group.Key;
            }
        }
        plot.XLabel("guidance weight w");
        plot.YLabel($"{rewardLabel} (mean ± SE)");
        plot.ShowLegend();
        return Save(plot, path);
    }

    /// <summary>Mean gold reward against perplexity, one scatter series per method (rows with NaN skipped).</summary>
    public static (string Png, string Svg) RewardVsPerplexity(string path, IReadOnlyList<MethodReportRow> rows, string rewardLabel = "gold reward")
    {
        var plot = new Plot();
        foreach (var group in rows.GroupBy(r => r.Method))
        {
            var points = group.Where(r => double.IsFinite(r.Perplexity) && double.IsFinite(r.Reward.Mean)).ToList();
            if (points.Count == 0) continue;
            var scatter = plot.Add.Scatter(points.Select(r => r.Perplexity).ToArray(), points.Select(r => r.Reward.Mean).ToArray());
            scatter.LineWidth = 0;
            scatter.MarkerSize = 8;
            scatter.LegendText = group.Key;
        }
        plot.XLabel("perplexity under the base LM");
        plot.YLabel(rewardLabel);
        plot.ShowLegend();
        return Save(plot, path);
    }

    /// <summary>
    /// The reward–KL frontier: gold reward against the distance to the base LM, one point per (method, w), the
    /// points of one method joined in order of w. Two panels side by side in one PNG, because the distance is
    /// measured two ways: LEFT, rows with a per-token policy (<see cref="MethodReportRow.KlToBase"/>): KL(π ‖ p_base)
    /// in nats per sample (vertical bars: the reward's SE); RIGHT, the rest (argmax methods, searches over samples),
    /// whose distribution has no per-token log-probability: perplexity under the base LM. A row with a policy is
    /// drawn only on the left.
    /// </summary>
    public static string Frontier(string path, IReadOnlyList<MethodReportRow> rows, string rewardLabel = "gold reward")
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        var kl = multiplot.GetPlot(0);
        var ppl = multiplot.GetPlot(1);
        foreach (var group in rows.GroupBy(r => r.Method))
        {
            var withPolicy = group.Where(r => r.KlToBase is { } k && double.IsFinite(k.Mean) && double.IsFinite(r.Reward.Mean)).OrderBy(r => r.W ?? 0).ToList();
            if (withPolicy.Count > 0)
            {
                double[] xs = withPolicy.Select(r => r.KlToBase!.Mean).ToArray(), ys = withPolicy.Select(r => r.Reward.Mean).ToArray();
                var line = kl.Add.Scatter(xs, ys);
                line.LegendText = group.Key;
                line.MarkerSize = 7;
                var bars = kl.Add.ErrorBar(xs, ys, withPolicy.Select(r => Finite(r.Reward.StandardError)).ToArray());
                bars.Color = line.Color;
                continue;
            }
            var points = group.Where(r => double.IsFinite(r.Perplexity) && double.IsFinite(r.Reward.Mean)).OrderBy(r => r.W ?? 0).ToList();
            if (points.Count == 0) continue;
            var scatter = ppl.Add.Scatter(points.Select(r => r.Perplexity).ToArray(), points.Select(r => r.Reward.Mean).ToArray());
            scatter.LegendText = group.Key;
            scatter.MarkerSize = 7;
        }
        kl.Title("per-token policies: KL to the base LM");
        kl.XLabel("KL(π ‖ p_base), nats per sample");
        kl.YLabel(rewardLabel);
        kl.ShowLegend(Alignment.LowerRight);
        ppl.Title("argmax and search methods: perplexity");
        ppl.XLabel("perplexity under the base LM");
        ppl.YLabel(rewardLabel);
        ppl.ShowLegend(Alignment.LowerRight);
        // One reward scale for both panels, so a point on the left and one on the right compare by height.
        var rewards = rows.Where(r => double.IsFinite(r.Reward.Mean)).Select(r => r.Reward.Mean).DefaultIfEmpty(0).ToList();
        double low = rewards.Min(), high = rewards.Max(), pad = Math.Max(0.05, 0.08 * (high - low));
        kl.Axes.SetLimitsY(low - pad, high + pad);
        ppl.Axes.SetLimitsY(low - pad, high + pad);
        var png = Path.ChangeExtension(path, null) + ".png";
        Pargs.IO.AtomicFile.WriteVia(png, temporary => multiplot.SavePng(temporary, 2 * Width, Height));
        return png;
    }

    static double Finite(double x) => double.IsFinite(x) ? x : 0;

    /// <summary>Pairwise accuracy against prefix length, one line per reward model (e.g. "full", "partial").</summary>
    public static (string Png, string Svg) PrefixAccuracy(
        string path, IReadOnlyDictionary<string, IReadOnlyList<PrefixAccuracyPoint>> byRewardModel, string prefixLabel = "prefix length (tokens)")
    {
        var plot = new Plot();
        foreach (var (name, points) in byRewardModel)
        {
            var sorted = points.Where(p => double.IsFinite(p.Accuracy)).OrderBy(p => p.PrefixLength).ToList();
            if (sorted.Count == 0) continue;
            var line = plot.Add.Scatter(sorted.Select(p => p.PrefixLength).ToArray(), sorted.Select(p => p.Accuracy).ToArray());
            line.LegendText = name;
        }
        var chance = plot.Add.HorizontalLine(0.5);
        chance.LinePattern = LinePattern.Dotted;
        chance.Color = Colors.Gray;
        plot.Axes.SetLimitsY(0, 1);
        plot.XLabel(prefixLabel);
        plot.YLabel("pairwise accuracy");
        plot.ShowLegend();
        return Save(plot, path);
    }

    private static (string Png, string Svg) Save(Plot plot, string path)
    {
        var stem = Path.ChangeExtension(path, null);
        var png = stem + ".png";
        var svg = stem + ".svg";
        // ScottPlot picks the format from the extension, so the temporary files keep it.
        Pargs.IO.AtomicFile.WriteVia(png, temporary => plot.SavePng(temporary, Width, Height));
        Pargs.IO.AtomicFile.WriteVia(svg, temporary => plot.SaveSvg(temporary, Width, Height));
        return (png, svg);
    }
}
