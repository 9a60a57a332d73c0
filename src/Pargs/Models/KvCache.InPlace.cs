using Pargs.Models.Cpu;

namespace Pargs.Models;

// KvCache, rows leaving without a copy of the cache: continuous batching lets a row leave at every few steps.
public sealed partial class KvCache
{
    /// <summary>
    /// <see cref="SelectRows"/> for rows listed in increasing order without repeats (rows leaving a continuous batch),
    /// done in this cache's buffers: each kept row's used slots move down to its new index (and left past the leading
    /// slots no kept row uses) by one memory move per row and kv head, and the buffers become views of their first rows.
    /// WHY: <see cref="SelectRows"/> allocates and zeroes new buffers and copies every kept row's whole capacity per
    /// layer — at 16 streams a row leaves every few steps, and those copies were a tenth of a step (docs/benchmarks.md).
    /// The same rows, slots, validity and committed counts as <see cref="SelectRows"/>; the slots past
    /// <see cref="Length"/> keep stale values, which no forward reads before writing them. False (nothing changed) when
    /// the rows are not increasing or a layer has no buffers yet.
    /// </summary>
    public unsafe bool KeepRowsInPlace(long[] rows)
    {
        for (int r = 0; r < rows.Length; r++)
            if (rows[r] < 0 || rows[r] >= batch || (r > 0 && rows[r] <= rows[r - 1])) return false;
        for (int i = 0; i < keys.Length; i++)
            if (keys[i] is null || values[i] is null) return false;
        int drop = Length;
        foreach (long r in rows)
        {
            int first = Array.IndexOf(valid, true, (int)(r * Capacity), Length);
            drop = Math.Min(drop, first < 0 ? Length : first - (int)(r * Capacity));
        }
        if (rows.Length == 0) drop = 0;
        long slotBytes = (long)headDim * ElementBytes, headBytes = Capacity * slotBytes, moved = (Length - drop) * slotBytes;
        for (int i = 0; i < keys.Length; i++)
        {
            foreach (var buffer in new[] { keys[i]!, values[i]! })
            {
                byte* data = (byte*)TensorMemory.Address(buffer);
                // Row rows[r] ≥ r goes to row r, in increasing r: a destination is never a later row's source
                // (later sources are > rows[r] ≥ r), and Buffer.MemoryCopy handles a row shifted within itself.
                for (int r = 0; r < rows.Length; r++)
                {
                    if (rows[r] == r && drop == 0) continue;
                    for (int g = 0; g < kvHeads; g++)
                        Buffer.MemoryCopy(data + (rows[r] * kvHeads + g) * headBytes + drop * slotBytes, data + ((long)r * kvHeads + g) * headBytes, moved, moved);
                }
            }
            if (rows.Length < batch)
            {
                var (oldKeys, oldValues) = (keys[i]!, values[i]!);
                // Views of the first rows (contiguous); the storage stays until the buffers are next reallocated.
                keys[i] = oldKeys.narrow(0, 0, rows.Length).DetachFromDisposeScope();
                values[i] = oldValues.narrow(0, 0, rows.Length).DetachFromDisposeScope();
                oldKeys.Dispose();
                oldValues.Dispose();
            }
        }
        var keptValid = new bool[(long)rows.Length * Capacity];
        var keptCount = new long[rows.Length];
        for (int r = 0; r < rows.Length; r++)
        {
            Array.Copy(valid, rows[r] * Capacity + drop, keptValid, (long)r * Capacity, Length - drop);
            keptCount[r] = validCount[rows[r]];
        }
        (valid, validCount, batch) = (keptValid, keptCount, rows.Length);
        Length -= drop;
        return true;
    }
}
