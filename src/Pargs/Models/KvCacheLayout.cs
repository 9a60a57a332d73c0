namespace Pargs.Models;

/// <summary>
/// The layout both KV caches give the decode kernel (<see cref="KvCache"/>'s tensors, the host engine's native buffers): one
/// buffer per layer and kind, [rows, kvHeads, capacity, head_dim], a slot = head_dim elements of 4 or 2 bytes. Every copy
/// of slots between rows of such buffers — joins, leaves, growth, kept siblings — is one memory copy per (row, kv head),
/// written once here.
/// </summary>
internal static unsafe class KvCacheLayout
{
    /// <summary>
    /// Slots [<paramref name="fromSlot"/>, + <paramref name="slots"/>) of every kv head of row <paramref name="fromRow"/> of
    /// <paramref name="from"/> (<paramref name="fromCapacity"/> slots per head) to slot <paramref name="toSlot"/> on of row
    /// <paramref name="toRow"/> of <paramref name="to"/> (<paramref name="toCapacity"/> slots per head). The buffers may be
    /// one (a row moved within itself or to another row: each head is one overlap-safe memory move). A whole buffer's
    /// heads are one "row" of rows × kvHeads heads.
    /// </summary>
    public static void CopySlots(byte* from, long fromRow, int fromCapacity, long fromSlot,
                                 byte* to, long toRow, int toCapacity, long toSlot,
                                 long slots, long kvHeads, long slotBytes)
    {
        long bytes = slots * slotBytes;
        for (long g = 0; g < kvHeads; g++)
            Buffer.MemoryCopy(from + ((fromRow * kvHeads + g) * fromCapacity + fromSlot) * slotBytes,
                              to + ((toRow * kvHeads + g) * toCapacity + toSlot) * slotBytes, bytes, bytes);
    }
}
