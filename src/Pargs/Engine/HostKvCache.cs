using System.Runtime.InteropServices;
using Pargs.Models;

namespace Pargs.Engine;

/// <summary>
/// The host engine's KV cache (<see cref="HostSession"/>): every layer's keys and values in native memory,
/// [rows, kvHeads, capacity, head_dim] float32 or float16 — the layout <see cref="KvCache"/> gives the decode kernel —
/// with which slots are real kept per row. Rows are right-aligned (prompts left-padded) and share <see cref="Length"/>.
/// WHY native: no torch tensor (libtorch is never loaded on this path), no pinned managed arrays for the GC to step
/// around, and pages are resident only once written. Zero-filled, so a padding slot inside an attention window is a
/// finite zero that its −inf mask removes (never NaN).
/// </summary>
internal sealed unsafe class HostKvCache : IDisposable
{
    readonly int layers, kvHeads, headDim;
    // Owned by this object: freed by Dispose, or by the finalizer when a cache is dropped undisposed. Replaced only whole
    // (Reserve allocates every layer's new buffer before it lets go of any old one).
    IntPtr[] keys = [], values = [];
    bool[] valid;   // [rows, Capacity]
    long[] committed; // [rows]: real tokens per row = each row's next position

    public HostKvCache(ModelConfig config, int rows, int capacity, KvCacheType type)
        : this(config.NumLayers, config.NumKvHeads, config.HeadDim, type, rows, capacity) { }

    HostKvCache(int layers, int kvHeads, int headDim, KvCacheType type, int rows, int capacity)
    {
        (this.layers, this.kvHeads, this.headDim, Type, Rows, Capacity) = (layers, kvHeads, headDim, type, rows, Math.Max(1, capacity));
        valid = new bool[rows * Capacity];
        committed = new long[rows];
        // All layers or none: the finalizer of a cache whose allocation failed finds nothing to free.
        (keys, values) = AllocateLayers(Capacity);
    }

    /// <summary>Frees the native memory of a cache nobody disposed (a session dropped without Dispose).</summary>
    ~HostKvCache() => Free();

    public KvCacheType Type { get; }
    public int Rows { get; }
    public int Capacity { get; private set; }
    public int Length { get; private set; }
    public bool Half => Type == KvCacheType.F16;
    int ElementBytes => Half ? 2 : 4;
    long SlotBytes => (long)headDim * ElementBytes;
    public IntPtr[] Keys => keys;
    public IntPtr[] Values => values;
    /// <summary>Row b's slot s holds a real token = ValidSlots[b · Capacity + s].</summary>
    public bool[] ValidSlots => valid;
    public long[] CommittedTokens => committed;

    long BufferBytes(int capacity) => Math.Max(1, (long)Rows * kvHeads * capacity * headDim * ElementBytes);

    /// <summary>Every layer's zeroed key and value buffers for <paramref name="capacity"/> slots; on failure, what was allocated is freed.</summary>
    (IntPtr[] Keys, IntPtr[] Values) AllocateLayers(int capacity)
    {
        var newKeys = new IntPtr[layers];
        var newValues = new IntPtr[layers];
        try
        {
            for (int l = 0; l < layers; l++)
            {
                newKeys[l] = (IntPtr)NativeMemory.AllocZeroed((nuint)BufferBytes(capacity));
                newValues[l] = (IntPtr)NativeMemory.AllocZeroed((nuint)BufferBytes(capacity));
            }
        }
        catch
        {
            FreeAll(newKeys);
            FreeAll(newValues);
            throw;
        }
        return (newKeys, newValues);
    }

    static void FreeAll(IntPtr[] buffers)
    {
        for (int i = 0; i < buffers.Length; i++)
        {
            if (buffers[i] != IntPtr.Zero) NativeMemory.Free((void*)buffers[i]);
            buffers[i] = IntPtr.Zero;
        }
    }

    /// <summary>Makes room for <paramref name="extra"/> slots past <see cref="Length"/> (doubling, as <see cref="KvCache.Reserve"/>).</summary>
    public void Reserve(int extra)
    {
        int need = Length + extra;
        if (need <= Capacity) return;
        int newCapacity = Math.Max(need, Capacity * 2);
        // Everything allocated first (managed, then native all-or-nothing), so a failure leaves the cache as it was:
        // every layer with the old stride that Capacity names.
        var newValid = new bool[Rows * newCapacity];
        var (newKeys, newValues) = AllocateLayers(newCapacity);
        for (int l = 0; l < layers; l++)
        {
            // Every (row, kv head) as a head of one row: its used slots, at the new stride.
            KvCacheLayout.CopySlots((byte*)keys[l], 0, Capacity, 0, (byte*)newKeys[l], 0, newCapacity, 0, Length, (long)Rows * kvHeads, SlotBytes);
            KvCacheLayout.CopySlots((byte*)values[l], 0, Capacity, 0, (byte*)newValues[l], 0, newCapacity, 0, Length, (long)Rows * kvHeads, SlotBytes);
        }
        for (int b = 0; b < Rows; b++) Array.Copy(valid, (long)b * Capacity, newValid, (long)b * newCapacity, Length);
        var (oldKeys, oldValues) = (keys, values);
        (keys, values, valid, Capacity) = (newKeys, newValues, newValid, newCapacity);
        FreeAll(oldKeys);
        FreeAll(oldValues);
    }

    /// <summary>Commits the <paramref name="t"/> slots per row the forward just wrote; <paramref name="newValid"/> [rows, t] marks the real ones.</summary>
    public void Advance(bool[] newValid, int t)
    {
        for (int b = 0; b < Rows; b++)
            for (int i = 0; i < t; i++)
                if (valid[b * Capacity + Length + i] = newValid[b * t + i]) committed[b]++;
        Length += t;
    }

    /// <summary>
    /// A cache of <paramref name="rows"/> of this one (in that order; repeats fork a row), with the leading slots none of
    /// them uses dropped, and room for <paramref name="capacity"/> slots at least.
    /// </summary>
    public HostKvCache SelectRows(int[] rows, int capacity)
    {
        int first = Length;
        foreach (int r in rows)
        {
            if (r < 0 || r >= Rows) throw new ArgumentOutOfRangeException(nameof(rows), $"row {r} of {Rows}");
            int s = Array.IndexOf(valid, true, r * Capacity, Length) is int at and >= 0 ? at - r * Capacity : Length;
            first = Math.Min(first, s);
        }
        int length = Length - first;
        var selected = new HostKvCache(layers, kvHeads, headDim, Type, rows.Length, Math.Max(capacity, length + 1));
        for (int i = 0; i < rows.Length; i++)
            selected.CopyRowFrom(this, rows[i], i, first, length, 0);
        selected.Length = length;
        return selected;
    }

    /// <summary>
    /// The rows of <paramref name="running"/> then those of <paramref name="joining"/>, right-aligned on the longer one's
    /// slots. Caches of different models or cache types are refused (as <see cref="KvCache.StackRows"/>): the copy reads
    /// both with one element size.
    /// </summary>
    public static HostKvCache Join(HostKvCache running, HostKvCache joining, int capacity)
    {
        if (running.layers != joining.layers || running.kvHeads != joining.kvHeads || running.headDim != joining.headDim || running.Type != joining.Type)
            throw new ArgumentException($"the caches belong to different models or cache types ({running.Type}, {joining.Type})");
        int length = Math.Max(running.Length, joining.Length);
        var joined = new HostKvCache(running.layers, running.kvHeads, running.headDim, running.Type, running.Rows + joining.Rows,
                                     Math.Max(capacity, Math.Max(running.Capacity, joining.Capacity)));
        try
        {
            for (int b = 0; b < running.Rows; b++) joined.CopyRowFrom(running, b, b, 0, running.Length, length - running.Length);
            for (int b = 0; b < joining.Rows; b++) joined.CopyRowFrom(joining, b, running.Rows + b, 0, joining.Length, length - joining.Length);
        }
        catch
        {
            joined.Dispose(); // a half-built join is nobody's: freed now, not at finalization
            throw;
        }
        joined.Length = length;
        return joined;
    }

    /// <summary>Slots [from, from + count) of <paramref name="source"/>'s row <paramref name="sourceRow"/> into this row <paramref name="row"/> at slot <paramref name="to"/>.</summary>
    void CopyRowFrom(HostKvCache source, int sourceRow, int row, int from, int count, int to)
    {
        if (source.Type != Type) throw new ArgumentException($"a {source.Type} cache's row copied into a {Type} cache");
        for (int l = 0; l < layers; l++)
        {
            KvCacheLayout.CopySlots((byte*)source.keys[l], sourceRow, source.Capacity, from, (byte*)keys[l], row, Capacity, to, count, kvHeads, SlotBytes);
            KvCacheLayout.CopySlots((byte*)source.values[l], sourceRow, source.Capacity, from, (byte*)values[l], row, Capacity, to, count, kvHeads, SlotBytes);
        }
        Array.Copy(source.valid, (long)sourceRow * source.Capacity + from, valid, (long)row * Capacity + to, count);
        committed[row] = source.committed[sourceRow];
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    void Free()
    {
        FreeAll(keys);
        FreeAll(values);
    }
}
