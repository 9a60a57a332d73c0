namespace Pargs.Models;

/// <summary>
/// Which orders of kept rows a batch's buffers ([rows, …]: a KV cache, a step's [B, V] log-probabilities) can take in
/// place, without new storage: rows leaving a continuous batch in order, and a leaving row's place taken by the last row
/// (ContinuousDecoder's swap-remove).
/// </summary>
internal static class KeptRows
{
    /// <summary>
    /// Whether each kept row comes from its own new index or a later one (rows[r] ≥ r), within the batch and without repeats:
    /// copied in increasing r, a destination is then never a later copy's source (rows[r'] ≥ r' > r). False for no rows.
    /// </summary>
    public static bool MoveDownInPlace(ReadOnlySpan<long> rows, long batch)
    {
        if (rows.Length == 0) return false;
        var seen = new bool[batch];
        for (int r = 0; r < rows.Length; r++)
        {
            if (rows[r] < r || rows[r] >= batch || seen[rows[r]]) return false;
            seen[rows[r]] = true;
        }
        return true;
    }
}
