namespace Pargs.Rewards;

/// <summary>
/// How prefix comparisons are grouped for <c>accuracy_by_prefix</c>: by prefix length i in doubling buckets
/// (1, 2, 3-4, 5-8, 9-16, 17-32, 33+) and by the fraction i/L of the response in quarters.
/// </summary>
public static class PrefixBuckets
{
    static readonly (int Low, int High)[] LengthRanges = [(1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, int.MaxValue)];

    public static IReadOnlyList<string> LengthLabels { get; } = LengthRanges.Select(Label).ToArray();
    public static IReadOnlyList<string> FractionLabels { get; } = ["0-25%", "25-50%", "50-75%", "75-100%"];

    public static int LengthBucket(int prefixLength)
    {
        for (int b = 0; b < LengthRanges.Length; b++)
            if (prefixLength <= LengthRanges[b].High) return b;
        return LengthRanges.Length - 1;
    }

    /// <summary>Quarter of the response that prefix i ends in: (0, ¼] → 0, …, (¾, 1] → 3.</summary>
    public static int FractionBucket(int prefixLength, int responseLength)
        => Math.Clamp((int)Math.Ceiling(4.0 * prefixLength / responseLength) - 1, 0, 3);

    static string Label((int Low, int High) range)
        => range.High == int.MaxValue ? $"{range.Low}+" : range.Low == range.High ? $"{range.Low}" : $"{range.Low}-{range.High}";
}
