using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Models;

// KvCache, rows leaving without a copy of the cache: continuous batching lets a row leave at every few steps.
public sealed partial class KvCache
{
    /// <summary>
    /// <see cref="SelectRows"/> for rows listed without repeats, each at or after its new index (rows leaving a continuous batch),
    /// done in this cache's buffers: each kept row's used slots move down to its new index (and left past the leading
    /// slots no kept row uses) by one memory move per row and kv head, and the buffers become views of their first rows.
    /// WHY: <see cref="SelectRows"/> allocates and zeroes new buffers and copies every kept row's whole capacity per
    /// layer — at 16 streams a row leaves every few steps, and those copies were a tenth of a step (docs/benchmarks.md).
    /// The same rows, slots, validity and committed counts as <see cref="SelectRows"/>; the slots past
    /// <see cref="Length"/> keep stale values, which no forward reads before writing them. False (nothing changed) when
    /// no row is kept, the rows are not an order <see cref="KeptRows.MoveDownInPlace"/> takes, or a layer has no buffers yet.
    /// </summary>
    /// <param name="dropLazily">Drops the leading slots no kept row uses only once they are an eighth of <see cref="Length"/> or
    /// more, or the cache is within an eighth of its capacity (where it would grow): dropping moves every kept row, while
    /// keeping a few dead slots costs each step's attention only their masked scores. A continuous batch, where the row
    /// that leaves is often the oldest one, would otherwise move all its rows at most leaves.</param>
    public unsafe bool KeepRowsInPlace(long[] rows, bool dropLazily = false)
    {
        // False too for no rows kept (a batch drains, a reward pass ends): the zero-row views would keep every layer's whole
        // storage alive while the session idles; SelectRows frees it instead.
        if (!KeptRows.MoveDownInPlace(rows, batch)) return false;
        for (int i = 0; i < keys.Length; i++)
            if (keys[i] is null || values[i] is null || keys[i]!.storage_offset() != 0 || values[i]!.storage_offset() != 0) return false; // Resize re-views from offset 0
        int drop = Length;
        foreach (long r in rows)
        {
            int first = Array.IndexOf(valid, true, (int)(r * Capacity), Length);
            drop = Math.Min(drop, first < 0 ? Length : first - (int)(r * Capacity));
        }
        if (dropLazily && drop * 8L < Length && Length * 8L < Capacity * 7L) drop = 0;
        long slotBytes = (long)headDim * ElementBytes;
        for (int i = 0; i < keys.Length; i++)
        {
            foreach (var buffer in new[] { keys[i]!, values[i]! })
            {
                byte* data = (byte*)TensorMemory.Address(buffer);
                // Row rows[r] ≥ r goes to row r, in increasing r: a destination is never a later row's source
                // (a later source rows[r'] ≥ r' > r), and Buffer.MemoryCopy handles a row shifted within itself.
                for (int r = 0; r < rows.Length; r++)
                {
                    if (rows[r] == r && drop == 0) continue;
                    KvCacheLayout.CopySlots(data, rows[r], Capacity, drop, data, r, Capacity, 0, Length - drop, kvHeads, slotBytes);
                }
            }
        }
        if (rows.Length < batch) Resize(rows.Length);
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

    // The buffers as views of the first rows of a storage that holds storageRows rows (after rows left in place), so rows
    // can join in place again; viewKeys/viewValues are those views: a buffer reallocated since (grown) is not one of them.
    Tensor?[]? viewKeys, viewValues;
    int storageRows;

    /// <summary>Whether the buffers are views of a storage holding more rows than <see cref="BatchSize"/> (rows left in place).</summary>
    internal bool HasHiddenStorageRows => BuffersAreViews() && storageRows > batch;

    /// <summary>Whether every layer's buffers are the views this class made (their storage holds <see cref="storageRows"/> rows).</summary>
    bool BuffersAreViews()
    {
        if (viewKeys is null || viewValues is null) return false;
        for (int i = 0; i < keys.Length; i++)
            if (keys[i] is null || !ReferenceEquals(keys[i], viewKeys[i]) || !ReferenceEquals(values[i], viewValues[i])) return false;
        return true;
    }

    /// <summary>Makes every layer's buffers views of the first <paramref name="rows"/> rows of their storage (contiguous, no copy).</summary>
    void Resize(int rows)
    {
        if (!BuffersAreViews()) storageRows = batch; // the buffers are whole tensors of batch rows
        viewKeys ??= new Tensor?[keys.Length];
        viewValues ??= new Tensor?[keys.Length];
        long[] size = [rows, kvHeads, Capacity, headDim], strides = [(long)kvHeads * Capacity * headDim, (long)Capacity * headDim, headDim, 1];
        for (int i = 0; i < keys.Length; i++)
        {
            var (oldKeys, oldValues) = (keys[i]!, values[i]!);
            keys[i] = viewKeys[i] = oldKeys.as_strided(size, strides).DetachFromDisposeScope();
            values[i] = viewValues[i] = oldValues.as_strided(size, strides).DetachFromDisposeScope();
            oldKeys.Dispose(); // the handle only: the storage stays with the views
            oldValues.Dispose();
        }
    }

    /// <summary>
    /// <see cref="Concat"/> of this cache and <paramref name="joining"/> done in this cache's storage, when rows left it in
    /// place (<see cref="KeepRowsInPlace"/>) and the storage has room for the joining rows, whose prompts are no longer than
    /// <see cref="Length"/> (so no running row moves): the joining rows' slots are copied in right-aligned, their padding
    /// zeroed, as <see cref="Concat"/> lays them out. False (nothing changed) otherwise; <paramref name="joining"/> is only read.
    /// </summary>
    public unsafe bool AppendRowsInPlace(KvCache joining)
    {
        if (joining.Type != Type || joining.kvHeads != kvHeads || joining.headDim != headDim || joining.keys.Length != keys.Length) return false;
        if (batch == 0 || joining.batch == 0 || joining.Length > Length || batch + joining.batch > storageRows || !BuffersAreViews()) return false;
        for (int i = 0; i < keys.Length; i++)
            if (joining.keys[i] is null || joining.values[i] is null) return false;
        int first = batch, shift = Length - joining.Length;
        Resize(batch + joining.batch);
        batch += joining.batch;
        long slotBytes = (long)headDim * ElementBytes, headBytes = Capacity * slotBytes, joiningHeadBytes = joining.Capacity * slotBytes;
        for (int i = 0; i < keys.Length; i++)
            foreach (var (buffer, part) in new[] { (keys[i]!, joining.keys[i]!), (values[i]!, joining.values[i]!) })
            {
                byte* data = (byte*)TensorMemory.Address(buffer), from = (byte*)TensorMemory.Address(part);
                for (int r = 0; r < joining.batch; r++)
                    for (int g = 0; g < kvHeads; g++)
                    {
                        byte* head = data + ((long)(first + r) * kvHeads + g) * headBytes;
                        new Span<byte>(head, checked((int)(shift * slotBytes))).Clear(); // padding: never attended, zero as Concat leaves it
                        Buffer.MemoryCopy(from + ((long)r * kvHeads + g) * joiningHeadBytes, head + shift * slotBytes, joining.Length * slotBytes, joining.Length * slotBytes);
                    }
            }
        var joinedValid = new bool[(long)batch * Capacity];
        Array.Copy(valid, joinedValid, (long)first * Capacity);
        for (int r = 0; r < joining.batch; r++)
            Array.Copy(joining.valid, (long)r * joining.Capacity, joinedValid, (long)(first + r) * Capacity + shift, joining.Length);
        valid = joinedValid;
        validCount = [.. validCount, .. joining.validCount];
        return true;
    }
}
