namespace Pargs.Decoding;

/// <summary>
/// The order of a row of scores from highest to lowest, by a radix sort on the floats' bits: what nucleus (top-p)
/// sampling walks. WHY not torch's sort: for a 32k vocabulary libtorch's comparison sort of (value, index) pairs took
/// ~2 ms per row — the largest single cost of a served one-token step on the 15M shape (a profile of `bench remote`:
/// 38 % of the server worker's CPU) — where three counting passes over the row take a small fraction of that.
/// <para>
/// Same order as any correct descending sort; ties (bit-equal scores, including −0 after +0) keep ascending index
/// order (the sort is stable), where libtorch's unstable sort leaves them in an unspecified order. A tie only decides
/// which of several equally likely tokens sits first; sums over the sorted values are the same either way. NaN, which
/// a log-probability never is, sorts first, as in torch's descending sort.
/// </para>
/// </summary>
public static class DescendingOrder
{
    /// <summary>Writes the indices of <paramref name="values"/> from highest to lowest value into <paramref name="order"/>.</summary>
    public static void Sort(ReadOnlySpan<float> values, Span<int> order)
    {
        int n = values.Length;
        if (order.Length != n) throw new ArgumentException($"{order.Length} order slots for {n} values");
        if (n == 0) return;
        var keys = new uint[n];
        var keysSwap = new uint[n];
        var index = new int[n];
        var indexSwap = new int[n];
        for (int i = 0; i < n; i++)
        {
            // IEEE bits made unsigned-ascending (negatives flipped, positives' sign bit set), then inverted: ascending
            // keys are descending values.
            float v = values[i];
            uint bits = BitConverter.SingleToUInt32Bits(v);
            uint ascending = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
            keys[i] = float.IsNaN(v) ? 0u : ~ascending;
            index[i] = i;
        }
        // Three passes of 11 bits (least significant first; each pass is stable, so the whole sort is).
        const int DigitBits = 11, Digits = 1 << DigitBits;
        Span<int> counts = stackalloc int[Digits];
        for (int shift = 0; shift < 32; shift += DigitBits)
        {
            counts.Clear();
            for (int i = 0; i < n; i++) counts[(int)(keys[i] >> shift) & (Digits - 1)]++;
            if (counts[(int)(keys[0] >> shift) & (Digits - 1)] == n) continue; // every key has this digit: the pass moves nothing
            int total = 0;
            for (int d = 0; d < Digits; d++)
            {
                int c = counts[d];
                counts[d] = total;
                total += c;
            }
            for (int i = 0; i < n; i++)
            {
                int at = counts[(int)(keys[i] >> shift) & (Digits - 1)]++;
                keysSwap[at] = keys[i];
                indexSwap[at] = index[i];
            }
            (keys, keysSwap) = (keysSwap, keys);
            (index, indexSwap) = (indexSwap, index);
        }
        index.AsSpan().CopyTo(order);
    }
}
