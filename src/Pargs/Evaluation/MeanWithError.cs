using System.Globalization;

namespace Pargs.Evaluation;

/// <summary>
/// Mean, sample standard deviation (divisor n − 1) and standard error of the mean SE = SD / √n.
/// Undefined values are NaN rather than errors, so a report can still show them as "–":
/// n = 0 → Mean, SD and SE are NaN; n = 1 → Mean is the value, SD and SE are NaN (one sample says nothing
/// about spread). Non-finite inputs propagate (NaN in → NaN out).
/// </summary>
public sealed record MeanWithError(double Mean, double StandardDeviation, double StandardError, int Count)
{
    public static MeanWithError Of(IEnumerable<double> values)
    {
        var xs = values as IReadOnlyList<double> ?? values.ToArray();
        int n = xs.Count;
        if (n == 0) return new MeanWithError(double.NaN, double.NaN, double.NaN, 0);
        double mean = 0;
        foreach (var x in xs) mean += x;
        mean /= n;
        if (n == 1) return new MeanWithError(mean, double.NaN, double.NaN, 1);
        double squares = 0;
        foreach (var x in xs) squares += (x - mean) * (x - mean);
        double sd = Math.Sqrt(squares / (n - 1));
        return new MeanWithError(mean, sd, sd / Math.Sqrt(n), n);
    }

    /// <summary><c>0.123 ± 0.045</c> (invariant culture); NaN parts print as "–".</summary>
    public string Format(string numberFormat = "0.000") =>
        $"{FormatNumber(Mean, numberFormat)} ± {FormatNumber(StandardError, numberFormat)}";

    internal static string FormatNumber(double x, string numberFormat) =>
        double.IsFinite(x) ? x.ToString(numberFormat, CultureInfo.InvariantCulture) : "–";
}
