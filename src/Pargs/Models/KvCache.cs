using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>How a <see cref="KvCache"/> stores keys and values (<c>--kv-cache</c>).</summary>
public enum KvCacheType
{
    /// <summary>float32: exactly what the forward computed (the default and the reference).</summary>
    F32,
    /// <summary>
    /// IEEE float16, rounded to nearest even on write and widened on read, as llama.cpp's default cache: half the
    /// memory and half the bytes attention reads per step, at ~1e-3 relative rounding of each key and value.
    /// </summary>
    F16,
}

/// <summary>
/// Keys and values of every layer for a batch of rows that advance together, plus which key slots are real.
/// Rows are aligned on the right (prompts are left-padded), so all rows share one <see cref="Length"/>;
/// padding slots are simply never attended to (<see cref="Valid"/> is false there).
/// Buffers are preallocated and grown by doubling, so a decoding step writes in place instead of
/// concatenating (no per-token reallocation of the whole cache). Which slots are real is kept on the host
/// (masks and positions are built there, see <see cref="AttentionMasks"/>). Keys and values are float32 or float16
/// (<see cref="Type"/>); the torch path reads a float16 cache widened to float32, the decode kernel reads the halves.
/// </summary>
public sealed partial class KvCache : IDisposable
{
    readonly Tensor?[] keys, values;
    bool[] valid;              // [B, Capacity]: slot holds a real token
    long[] validCount;         // [B]: real tokens committed per row
    int batch;                 // rows; fewer than the buffers' storage holds after rows left in place (KeepRowsInPlace)
    readonly int kvHeads, headDim;

    public KvCache(ModelConfig config, int batchSize, int initialCapacity = 64, KvCacheType type = KvCacheType.F32)
    {
        Type = type;
        batch = batchSize;
        kvHeads = config.NumKvHeads;
        headDim = config.HeadDim;
        keys = new Tensor?[config.NumLayers];
        values = new Tensor?[config.NumLayers];
        addressRead = new Tensor?[2 * config.NumLayers];
        address = new nint[2 * config.NumLayers];
        Capacity = Math.Max(1, initialCapacity);
        valid = new bool[batch * Capacity];
        validCount = new long[batch];
    }

    public int BatchSize => batch;
    /// <summary>How keys and values are stored.</summary>
    public KvCacheType Type { get; }
    /// <summary>Bytes of one stored key or value element.</summary>
    public int ElementBytes => Type == KvCacheType.F16 ? 2 : 4;
    ScalarType DType => Type == KvCacheType.F16 ? ScalarType.Float16 : ScalarType.Float32;
    /// <summary>Bytes the key and value buffers hold now (layers allocate on first use; capacity, not length).</summary>
    // Every buffer is [B, kvHeads, Capacity, D] (whole, or a view of its storage's first B rows): counted from the shape held
    // here, not asked of libtorch (a P/Invoke per buffer was ~5 % of a server worker that keeps a row's cache per request).
    public long AllocatedBytes
    {
        get
        {
            int buffers = 0;
            for (int i = 0; i < keys.Length; i++) buffers += (keys[i] is null ? 0 : 1) + (values[i] is null ? 0 : 1);
            return buffers * (long)batch * kvHeads * Capacity * headDim * ElementBytes;
        }
    }
    /// <summary>Bytes of one slot of one row over every layer, keys and values (for memory estimates).</summary>
    public static long BytesPerSlot(ModelConfig config, KvCacheType type) => 2L * config.NumLayers * config.KvDim * (type == KvCacheType.F16 ? 2 : 4);
    /// <summary>Committed key slots (prompt + accepted tokens, padding included).</summary>
    public int Length { get; private set; }
    public int Capacity { get; private set; }
    /// <summary>[B, Length] bool: which committed slots hold real tokens.</summary>
    public Tensor ValidPrefix
    {
        get
        {
            var prefix = new bool[batch * Length];
            for (int b = 0; b < batch; b++) Array.Copy(valid, (long)b * Capacity, prefix, (long)b * Length, Length);
            return tensor(prefix, batch, Length);
        }
    }

    /// <summary>Row b's slot s is real = ValidSlots[b · Capacity + s] (s &lt; Length), without a tensor.</summary>
    public bool[] ValidSlots => valid;

    /// <summary>Real tokens committed per row [B]: each row's next position.</summary>
    public long[] CommittedTokens => validCount;

    /// <summary>Makes room for <paramref name="extra"/> slots past <see cref="Length"/>.</summary>
    public void Reserve(int extra)
    {
        int need = Length + extra;
        if (need <= Capacity) return;
        // Slots are not positions (padding and sibling candidates take slots too), so the context limit is
        // enforced on positions by BatchSession, not here.
        int newCapacity = Math.Max(need, Capacity * 2);
        for (int i = 0; i < keys.Length; i++)
        {
            keys[i] = Grow(keys[i], newCapacity);
            values[i] = Grow(values[i], newCapacity);
        }
        var newValid = new bool[batch * newCapacity];
        for (int b = 0; b < batch; b++) Array.Copy(valid, (long)b * Capacity, newValid, (long)b * newCapacity, Capacity);
        valid = newValid;
        Capacity = newCapacity;
    }

    Tensor? Grow(Tensor? old, int newCapacity)
    {
        if (old is null) return null;
        var grown = zeros(batch, kvHeads, newCapacity, headDim, dtype: DType);
        grown.narrow(2, 0, Capacity).copy_(old);
        old.Dispose();
        return grown.DetachFromDisposeScope();
    }

    /// <summary>
    /// Writes a layer's new keys/values [B, kvHeads, T, D] at slots Length..Length+T-1 and returns views of
    /// all keys/values up to them. <see cref="Length"/> does not move until <see cref="Advance"/> or
    /// <see cref="CommitSibling"/>, so every layer of one forward writes the same slots.
    /// </summary>
    public (Tensor Keys, Tensor Values) Write(int layer, Tensor k, Tensor v)
    {
        int t = (int)k.shape[2];
        if (Length + t > Capacity) throw new InvalidOperationException("KvCache.Reserve was not called before the forward");
        keys[layer] ??= zeros(batch, kvHeads, Capacity, headDim, dtype: DType).DetachFromDisposeScope();
        values[layer] ??= zeros(batch, kvHeads, Capacity, headDim, dtype: DType).DetachFromDisposeScope();
        keys[layer]!.narrow(2, Length, t).copy_(k); // rounds to float16 for a float16 cache
        values[layer]!.narrow(2, Length, t).copy_(v);
        var (allKeys, allValues) = (keys[layer]!.narrow(2, 0, Length + t), values[layer]!.narrow(2, 0, Length + t));
        // The torch attention computes in the queries' float32: a float16 cache is read widened (the rounding stays).
        return Type == KvCacheType.F16 ? (allKeys.to(k.dtype), allValues.to(v.dtype)) : (allKeys, allValues);
    }

    /// <summary>Commits the <paramref name="t"/> slots per row just written by every layer; <paramref name="newValid"/> [B, T] marks the real ones.</summary>
    public void Advance(bool[] newValid, int t)
    {
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < t; i++)
                if (valid[b * Capacity + Length + i] = newValid[b * t + i]) validCount[b]++;
        Length += t;
    }

    /// <summary>
    /// After a sibling forward wrote k candidate tokens at slots Length..Length+k-1 (each attending only to the
    /// prefix and itself), keeps candidate <paramref name="chosen"/>[b] of each row as the next committed
    /// token. Its keys/values are exactly what a forward of that token alone would give, so the prefix is
    /// extended with no extra forward pass: one copy of D floats per layer, row and kv head.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public unsafe void CommitSibling(long[] chosen)
    {
        if (chosen.Length != batch) throw new ArgumentException($"expected {batch} chosen columns, got {chosen.Length}");
        long bytes = (long)headDim * ElementBytes;
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] is null) continue;
            for (int kind = 0; kind < 2; kind++)
            {
                byte* data = BufferAddress(i, kind);
                for (int b = 0; b < batch; b++)
                {
                    if (chosen[b] == 0) continue; // already in place
                    if (chosen[b] < 0 || Length + chosen[b] >= Capacity) throw new ArgumentOutOfRangeException(nameof(chosen), $"sibling column {chosen[b]} of row {b} was never written");
                    KvCacheLayout.CopySlots(data, b, Capacity, Length + chosen[b], data, b, Capacity, Length, 1, kvHeads, bytes);
                }
            }
        }
        for (int b = 0; b < batch; b++)
        {
            valid[b * Capacity + Length] = true;
            validCount[b]++;
        }
        Length += 1;
    }

    /// <summary>
    /// The k slots a sibling forward wrote past <see cref="Length"/> (the k candidates' keys and values), copied out as a
    /// cache of the same rows holding just those slots: a server keeps them until its client's next request says which
    /// candidate was chosen, then commits that one with <see cref="AppendSlots"/> — <see cref="CommitSibling"/> across
    /// two requests.
    /// </summary>
    public unsafe KvCache SiblingSlots(int k)
    {
        if (k < 1 || Length + k > Capacity) throw new ArgumentOutOfRangeException(nameof(k), $"{k} sibling slots past slot {Length} of {Capacity}");
        var copy = new KvCache(batch, kvHeads, headDim, keys.Length, k, Type) { Length = k };
        long slotBytes = (long)headDim * ElementBytes;
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] is null) continue;
            copy.keys[i] = empty(batch, kvHeads, k, headDim, dtype: DType).DetachFromDisposeScope();
            copy.values[i] = empty(batch, kvHeads, k, headDim, dtype: DType).DetachFromDisposeScope();
            // Host copies, one per row and kv head (see CompactRow): a server does this once per /v1/rewards pass.
            foreach (var (source, target) in new[] { (keys[i]!, copy.keys[i]!), (values[i]!, copy.values[i]!) })
                KvCacheLayout.CopySlots((byte*)Cpu.TensorMemory.Address(source), 0, Capacity, Length,
                                        (byte*)Cpu.TensorMemory.Address(target), 0, k, 0, k, (long)batch * kvHeads, slotBytes);
        }
        Array.Fill(copy.valid, true);
        Array.Fill(copy.validCount, (long)k);
        return copy;
    }

    /// <summary>
    /// Commits one more token per row from kept keys/values: row b's next slot is a copy of slot
    /// <paramref name="sources"/>[b].Slot of row <paramref name="sources"/>[b].Row of that cache (<see cref="SiblingSlots"/>
    /// of a sibling forward over this row's prefix). Those are exactly what a forward of that token would write, so the row
    /// grows by a token with no forward pass: one copy of D values per layer, row and kv head.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public unsafe void AppendSlots(IReadOnlyList<(KvCache Cache, int Row, int Slot)> sources)
    {
        if (sources.Count != batch) throw new ArgumentException($"expected {batch} kept slots, got {sources.Count}");
        foreach (var (source, row, slot) in sources)
            if (source.Type != Type || source.kvHeads != kvHeads || source.headDim != headDim || source.keys.Length != keys.Length
                || row < 0 || row >= source.batch || slot < 0 || slot >= source.Length || !source.valid[(long)row * source.Capacity + slot])
                throw new ArgumentException("a kept slot belongs to another model (or cache type), or was never written");
        Reserve(1);
        long bytes = (long)headDim * ElementBytes;
        for (int i = 0; i < keys.Length; i++)
        {
            Buffers(i); // allocated on first use
            for (int b = 0; b < batch; b++)
            {
                var (source, row, slot) = sources[b];
                if (source.keys[i] is null) throw new ArgumentException($"kept slot {b} has no keys for layer {i}");
                for (int kind = 0; kind < 2; kind++)
                    KvCacheLayout.CopySlots(source.BufferAddress(i, kind), row, source.Capacity, slot, BufferAddress(i, kind), b, Capacity, Length, 1, kvHeads, bytes);
            }
        }
        for (int b = 0; b < batch; b++)
        {
            valid[b * Capacity + Length] = true;
            validCount[b]++;
        }
        Length += 1;
    }

    /// <summary>
    /// Writes row <paramref name="sourceRow"/>'s <paramref name="count"/> slots past <paramref name="source"/>'s length (a sibling
    /// forward's candidates there) into this one-row cache's slots past its length, uncommitted — where a sibling forward over
    /// this row alone would have written them. <see cref="Reserve"/> first.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public unsafe void CopySlotsPastLength(KvCache source, int sourceRow, int count)
    {
        if (batch != 1 || source.Type != Type || source.kvHeads != kvHeads || source.headDim != headDim || source.keys.Length != keys.Length
            || sourceRow < 0 || sourceRow >= source.batch || source.Length + count > source.Capacity || Length + count > Capacity)
            throw new ArgumentException("slots past the length of another model's cache, or past either cache's capacity");
        long bytes = (long)headDim * ElementBytes;
        for (int i = 0; i < keys.Length; i++)
        {
            if (source.keys[i] is null) continue;
            Buffers(i);
            for (int kind = 0; kind < 2; kind++)
                KvCacheLayout.CopySlots(source.BufferAddress(i, kind), sourceRow, source.Capacity, source.Length, BufferAddress(i, kind), 0, Capacity, Length, count, kvHeads, bytes);
        }
    }

    /// <summary>Layer <paramref name="layer"/>'s whole key and value buffers [B, kvHeads, Capacity, D] (allocated on
    /// first use; float32 or float16 as <see cref="Type"/> says), for a kernel that writes slots Length.. in place as
    /// <see cref="Write"/> does.</summary>
    internal (Tensor Keys, Tensor Values) Buffers(int layer)
    {
        keys[layer] ??= zeros(batch, kvHeads, Capacity, headDim, dtype: DType).DetachFromDisposeScope();
        values[layer] ??= zeros(batch, kvHeads, Capacity, headDim, dtype: DType).DetachFromDisposeScope();
        return (keys[layer]!, values[layer]!);
    }

    /// <summary>
    /// Keeps only the rows in <paramref name="rows"/> (e.g. to expand one prompt into N samples, or to let
    /// finished rows leave). Leading slots that no kept row uses are dropped, so a long-running batch whose
    /// rows come and go does not grow without bound.
    /// </summary>
    public KvCache SelectRows(long[] rows)
    {
        int drop = Length;
        foreach (long r in rows)
        {
            int first = Array.IndexOf(valid, true, (int)(r * Capacity), Length);
            drop = Math.Min(drop, first < 0 ? Length : first - (int)(r * Capacity));
        }
        if (rows.Length == 0) drop = 0;
        var copy = new KvCache(batch: rows.Length, kvHeads, headDim, keys.Length, Capacity, Type) { Length = Length - drop };
        if (rows.Length == 0) return copy; // every row left (a server's one-token step requests): no buffers, no per-layer ops
        using var index = tensor(rows);
        for (int i = 0; i < keys.Length; i++)
        {
            copy.keys[i] = Shifted(keys[i]?.index_select(0, index), drop);
            copy.values[i] = Shifted(values[i]?.index_select(0, index), drop);
        }
        for (int r = 0; r < rows.Length; r++)
        {
            Array.Copy(valid, rows[r] * Capacity + drop, copy.valid, (long)r * Capacity, Capacity - drop);
            copy.validCount[r] = validCount[rows[r]];
        }
        return copy;
    }

    /// <summary>[B, kvHeads, Capacity, D] with slots moved <paramref name="drop"/> to the left (the tail zeroed).</summary>
    static Tensor? Shifted(Tensor? buffer, int drop)
    {
        if (buffer is null) return null;
        if (drop > 0)
        {
            long capacity = buffer.shape[2];
            var shifted = zeros_like(buffer);
            shifted.narrow(2, 0, capacity - drop).copy_(buffer.narrow(2, drop, capacity - drop));
            buffer.Dispose();
            buffer = shifted;
        }
        return buffer.DetachFromDisposeScope();
    }

    /// <summary>
    /// The rows of <paramref name="a"/> then those of <paramref name="b"/> in one cache, aligned on the right
    /// as a batch is (the shorter one's slots move right; the slots before them are padding, never attended).
    /// </summary>
    public static KvCache Concat(KvCache a, KvCache b)
    {
        if (a.kvHeads != b.kvHeads || a.headDim != b.headDim || a.keys.Length != b.keys.Length || a.Type != b.Type)
            throw new ArgumentException("the caches belong to different models");
        int length = Math.Max(a.Length, b.Length);
        int capacity = Math.Max(Math.Max(a.Capacity - a.Length, b.Capacity - b.Length) + length, 1);
        var joined = new KvCache(a.batch + b.batch, a.kvHeads, a.headDim, a.keys.Length, capacity, a.Type) { Length = length };
        for (int i = 0; i < a.keys.Length; i++)
        {
            if (a.keys[i] is null && b.keys[i] is null) continue;
            var (keys, values) = joined.Buffers(i);
            foreach (var (part, rowOffset) in new[] { (a, 0), (b, a.batch) })
            {
                if (part.keys[i] is null || part.batch == 0) continue;
                int shift = length - part.Length;
                keys.narrow(0, rowOffset, part.batch).narrow(2, shift, part.Length).copy_(part.keys[i]!.narrow(2, 0, part.Length));
                values.narrow(0, rowOffset, part.batch).narrow(2, shift, part.Length).copy_(part.values[i]!.narrow(2, 0, part.Length));
            }
        }
        foreach (var (part, rowOffset) in new[] { (a, 0), (b, a.batch) })
        {
            int shift = length - part.Length;
            for (int r = 0; r < part.batch; r++)
            {
                Array.Copy(part.valid, (long)r * part.Capacity, joined.valid, (long)(rowOffset + r) * capacity + shift, part.Length);
                joined.validCount[rowOffset + r] = part.validCount[r];
            }
        }
        return joined;
    }

    /// <summary>
    /// Row <paramref name="row"/> alone, compacted: only its real slots, in order, in a cache of exactly that many slots
    /// (a server's prefix cache keeps it). Positions count real tokens only, so the copy's numbers are the row's.
    /// WHY host copies: a remote client's every step request leaves the server's batch through here, and on a small model
    /// the per-layer torch ops (a slot index tensor, narrow, index_select: op dispatch and allocations) cost far more than the
    /// bytes they move (docs/benchmarks.md, "Remote steering, fourth pass").
    /// </summary>
    public unsafe KvCache CompactRow(int row)
    {
        if (row < 0 || row >= batch) throw new ArgumentOutOfRangeException(nameof(row), $"row {row} of a batch of {batch}");
        // The row's real slots as runs [start, start + length): usually one run (left padding, then the row's tokens).
        var runs = new List<(int Start, int Length)>();
        int count = 0;
        for (int s = 0; s < Length; s++)
        {
            if (!valid[(long)row * Capacity + s]) continue;
            if (runs.Count > 0 && runs[^1].Start + runs[^1].Length == s) runs[^1] = (runs[^1].Start, runs[^1].Length + 1);
            else runs.Add((s, 1));
            count++;
        }
        var copy = new KvCache(1, kvHeads, headDim, keys.Length, Math.Max(1, count), Type) { Length = count };
        long slotBytes = (long)headDim * ElementBytes;
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] is null || count == 0) continue;
            foreach (var (source, kind) in new[] { (keys[i]!, 0), (values[i]!, 1) })
            {
                // Buffers are contiguous by construction (zeros/empty, or as_strided views with the same strides).
                var target = empty(1, kvHeads, copy.Capacity, headDim, dtype: DType).DetachFromDisposeScope();
                (kind == 0 ? copy.keys : copy.values)[i] = target;
                byte* from = (byte*)Cpu.TensorMemory.Address(source), to = (byte*)Cpu.TensorMemory.Address(target);
                int at = 0;
                foreach (var (start, length) in runs)
                {
                    KvCacheLayout.CopySlots(from, row, Capacity, start, to, 0, copy.Capacity, at, length, kvHeads, slotBytes);
                    at += length;
                }
            }
        }
        Array.Fill(copy.valid, true, 0, count);
        copy.validCount[0] = count;
        return copy;
    }

    /// <summary>
    /// The rows of all <paramref name="parts"/> in one cache, aligned on the right (as <see cref="Concat(KvCache, KvCache)"/>,
    /// in one copy for many parts), with room for <paramref name="spare"/> more slots. <paramref name="slots"/>[i], when
    /// given, takes only part i's first slots (a prefix of a kept sequence). The parts are only read.
    /// </summary>
    public static KvCache Stack(IReadOnlyList<KvCache> parts, int spare, IReadOnlyList<int>? slots = null)
    {
        var rows = new List<(KvCache?, int, int, int)>();
        for (int p = 0; p < parts.Count; p++)
            for (int r = 0; r < parts[p].batch; r++)
                rows.Add((parts[p], r, 0, slots is null ? parts[p].Length : slots[p]));
        return StackRows(rows, spare, parts[0]);
    }

    /// <summary>
    /// One row per entry of <paramref name="rows"/>, aligned on the right with room for <paramref name="spare"/> more slots:
    /// row i holds slots FirstSlot .. FirstSlot + Slots − 1 of row Row of Cache (at most up to its length; a null Cache, or
    /// no slots, gives a row with none). The caches are only read. A prefix cache's entries are rows of this kind: a compact
    /// copy (row 0 from slot 0) or a row of the session cache it left with (<see cref="Pargs.Engine.PrefixCache.AddShared"/>).
    /// <paramref name="model"/> gives the shapes when no row has a cache.
    /// </summary>
    public static unsafe KvCache StackRows(IReadOnlyList<(KvCache? Cache, int Row, int FirstSlot, int Slots)> rows, int spare, KvCache? model = null)
    {
        var first = rows.Select(r => r.Cache).FirstOrDefault(c => c is not null) ?? model ?? throw new ArgumentException("no row has a cache to take the shapes from");
        var used = new int[rows.Count];
        for (int j = 0; j < rows.Count; j++)
        {
            var (part, row, firstSlot, slots) = rows[j];
            if (part is null) continue;
            if (part.kvHeads != first.kvHeads || part.headDim != first.headDim || part.keys.Length != first.keys.Length || part.Type != first.Type)
                throw new ArgumentException("the caches belong to different models (or cache types)");
            if (row < 0 || row >= part.batch || firstSlot < 0) throw new ArgumentOutOfRangeException(nameof(rows), $"row {row} from slot {firstSlot} of a cache of {part.batch} rows");
            used[j] = Math.Max(0, Math.Min(slots, part.Length - firstSlot));
        }
        int length = used.DefaultIfEmpty(0).Max();
        int capacity = Math.Max(1, length + spare);
        var joined = new KvCache(rows.Count, first.kvHeads, first.headDim, first.keys.Length, capacity, first.Type) { Length = length };
        // Host copies into uninitialized buffers, one memory copy per row and kv head: the per-part narrow/copy_ ops this
        // replaced were most of a small model's join (see CompactRow). Only the slots no copy writes — each row's left
        // padding and the spare slots past the length — are zeroed (as Concat leaves them), not the whole buffer first:
        // a remote client's every step request gathers its row here, and zeroing what the copy then overwrites doubled
        // the bytes written (docs/benchmarks.md, "Remote steering, seventh pass").
        long slotBytes = (long)first.headDim * first.ElementBytes;
        for (int i = 0; i < first.keys.Length; i++)
        {
            bool any = false;
            for (int j = 0; j < rows.Count && !any; j++) any = used[j] > 0 && rows[j].Cache!.keys[i] is not null;
            if (!any) continue;
            joined.keys[i] = empty(rows.Count, first.kvHeads, capacity, first.headDim, dtype: joined.DType).DetachFromDisposeScope();
            joined.values[i] = empty(rows.Count, first.kvHeads, capacity, first.headDim, dtype: joined.DType).DetachFromDisposeScope();
            byte* toKeys = (byte*)Cpu.TensorMemory.Address(joined.keys[i]!), toValues = (byte*)Cpu.TensorMemory.Address(joined.values[i]!);
            for (int j = 0; j < rows.Count; j++)
            {
                var (part, row, firstSlot, _) = rows[j];
                bool copied = used[j] > 0 && part!.keys[i] is not null;
                int written = copied ? used[j] : 0;
                for (int kind = 0; kind < 2; kind++)
                {
                    byte* to = kind == 0 ? toKeys : toValues;
                    for (long g = 0; g < first.kvHeads; g++)
                    {
                        byte* head = to + ((long)j * first.kvHeads + g) * capacity * slotBytes;
                        new Span<byte>(head, checked((int)((length - written) * slotBytes))).Clear();
                        new Span<byte>(head + length * slotBytes, checked((int)((capacity - length) * slotBytes))).Clear();
                    }
                    if (!copied) continue;
                    // Buffers are contiguous by construction (zeros/empty, or as_strided views with the same strides).
                    KvCacheLayout.CopySlots(part!.BufferAddress(i, kind), row, part.Capacity, firstSlot,
                                            to, j, capacity, length - used[j], used[j], first.kvHeads, slotBytes);
                }
            }
        }
        for (int j = 0; j < rows.Count; j++)
        {
            if (used[j] == 0) continue;
            var (part, row, firstSlot, _) = rows[j];
            long from = (long)row * part!.Capacity + firstSlot;
            Array.Copy(part.valid, from, joined.valid, (long)j * capacity + length - used[j], used[j]);
            joined.validCount[j] = firstSlot == 0 && used[j] == part.Length ? part.validCount[row] : part.valid.AsSpan((int)from, used[j]).Count(true);
        }
        return joined;
    }

    /// <summary>
    /// Rows [<paramref name="first"/>, first + <paramref name="count"/>) as a cache over this cache's buffers (views, no
    /// copy): a forward through it writes those rows' slots Length.. here, as a forward of the whole batch would. For a
    /// batch whose rows run on separate threads (<see cref="BatchSession.Siblings"/>); the view's <see cref="Length"/>
    /// does not follow this cache's, so it lives for one forward. Disposing it leaves the buffers to this cache.
    /// </summary>
    internal KvCache RowView(int first, int count)
    {
        if (first < 0 || count < 0 || first + count > batch) throw new ArgumentOutOfRangeException(nameof(count), $"rows {first}..{first + count} of a batch of {batch}");
        var view = new KvCache(count, kvHeads, headDim, keys.Length, Capacity, Type) { Length = Length };
        for (int i = 0; i < keys.Length; i++)
        {
            var (k, v) = Buffers(i); // [B, kvHeads, Capacity, D] contiguous: a range of rows is contiguous too
            view.keys[i] = k.narrow(0, first, count).DetachFromDisposeScope();
            view.values[i] = v.narrow(0, first, count).DetachFromDisposeScope();
        }
        Array.Copy(valid, (long)first * Capacity, view.valid, 0, (long)count * Capacity);
        Array.Copy(validCount, first, view.validCount, 0, count);
        return view;
    }

    KvCache(int batch, int kvHeads, int headDim, int layers, int capacity, KvCacheType type)
    {
        Type = type;
        this.batch = batch;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        keys = new Tensor?[layers];
        values = new Tensor?[layers];
        addressRead = new Tensor?[2 * layers];
        address = new nint[2 * layers];
        Capacity = capacity;
        valid = new bool[batch * capacity];
        validCount = new long[batch];
    }

    // Each layer's key and value buffer's first byte, with the tensor it was read from (the buffer a layer holds changes
    // only with the tensor: Grow, views and joins make new ones). WHY: StackRows reads a source buffer's address per row,
    // layer and kind from rows of many caches; TensorMemory.Address is a P/Invoke that follows libtorch's tensor →
    // storage → data pointers, cold in a cache left from an earlier step: ~5 % of pargs serve's two workers (both joins,
    // per remote step request) went to those reads (docs/benchmarks.md, "Remote steering, eleventh pass").
    readonly Tensor?[] addressRead;
    readonly nint[] address;

    /// <summary>The first bytes of layer <paramref name="layer"/>'s key and value buffers (allocated on first use), read once per buffer.</summary>
    internal unsafe (nint Keys, nint Values) Addresses(int layer)
    {
        Buffers(layer);
        return ((nint)BufferAddress(layer, 0), (nint)BufferAddress(layer, 1));
    }

    /// <summary>The first byte of layer <paramref name="layer"/>'s keys (<paramref name="kind"/> 0) or values (1); the buffer must exist.</summary>
    unsafe byte* BufferAddress(int layer, int kind)
    {
        var buffer = kind == 0 ? keys[layer]! : values[layer]!;
        int at = 2 * layer + kind;
        if (!ReferenceEquals(addressRead[at], buffer))
        {
            address[at] = Cpu.TensorMemory.Address(buffer);
            addressRead[at] = buffer;
        }
        return (byte*)address[at];
    }

    public void Dispose()
    {
        Array.Clear(addressRead);
        foreach (var t in keys) t?.Dispose();
        foreach (var t in values) t?.Dispose();
    }
}
