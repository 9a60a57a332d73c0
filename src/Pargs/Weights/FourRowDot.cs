using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// Decode's matrix × vector product for Q8_0 and Q4_0 weights: four weight rows against one <see cref="Q8_0"/>
/// activation row per pass, with AVX-VNNI. WHY four rows: each activation block, its scale and its offset are loaded
/// once for four rows, the four rows' FMA chains are independent, and one horizontal reduction serves four outputs
/// (a row of Qwen2.5-0.5B's q/k/v/o/gate/up is only 28 blocks, so one reduction per row was a large share of it).
/// <para>WHY offsets: vpdpbusd multiplies unsigned by signed bytes. The one-row <see cref="Q8_0.Dot"/> moves w's sign onto
/// a (vpabsb, vpsignb: two extra operations per block and row). Here the weights enter as unsigned bytes — a Q8_0 byte
/// with its top bit flipped is w + 128, a Q4_0 nibble is its level q = w + 8 — and the sum picks up k·Σa (k = 128 or 8),
/// which depends on the activation alone: <see cref="Prepare"/> computes −k·Σa once per block and product, and the
/// kernel starts each block's vpdpbusd from it, so Σ w·a comes out exact, as integers, with no extra operation per row.</para>
/// The integers are those of <see cref="Q8_0.Dot"/> / <see cref="Q4_0.Dot"/>; only the float summation order differs
/// (tested against the double loop over dequantized weights).
/// </summary>
public static unsafe class FourRowDot
{
    /// <summary>Whether the CPU has what the kernels need (AVX-VNNI, FMA) and <see cref="IntegerDot.VnniEnabled"/> allows them.</summary>
    public static bool Supported => IntegerDot.UseVnni && Fma.IsSupported;

    /// <summary>Whether <paramref name="format"/> has a four-row kernel here.</summary>
    public static bool Takes(WeightFormat format) => format is WeightFormat.Q8_0 or WeightFormat.Q4_0 && Supported;

    /// <summary>The 4-KiB-ahead-in-the-row prefetch distance of the overloads without one (long rows cross page boundaries, where the hardware prefetchers stop).</summary>
    const int PrefetchBytes = 4096;

    /// <summary>Bytes a decode's weight stream should run ahead of the kernel: at least this much (<see cref="AheadOfRows"/>).</summary>
    public const int MinPrefetchAhead = 8192;

    /// <summary>
    /// The prefetch distance for a one-row product over rows of <paramref name="rowBytes"/> bytes stored one after another:
    /// whole four-row passes (so each prefetch lands on the same block of a row a few passes on) covering at least
    /// <see cref="MinPrefetchAhead"/> bytes. WHY: the four row streams of a pass are one contiguous region, which the
    /// hardware prefetchers follow only within 4 KiB pages; fetching the next pass block by block, as the kernel reads
    /// the current one, keeps a steady ~8 KiB in flight. Measured in a probe (12 GB/s plain streaming loop, one thread):
    /// a 8192 × 2048 Q8_0 product 9.6 → 14.1 GB/s, 2048 × 8192 9.6–11.4 → 12.0–12.4, 4864 × 896 13.6–14.0 → 15.1–15.7
    /// (was: whole rows two passes ahead), 896 × 4864 11.7–12.2 → 15.3–16.1.
    /// </summary>
    public static long AheadOfRows(long rowBytes)
    {
        long pass = 4 * rowBytes;
        return (MinPrefetchAhead + pass - 1) / pass * pass;
    }

    /// <summary>
    /// The prefetch distance for passes of <paramref name="rowsPerPass"/> rows of <paramref name="rowBytes"/> bytes
    /// (<see cref="AheadOfRows(long)"/> for four; eight for <see cref="Q8_0EightRows"/>): whole passes, at least
    /// <see cref="MinPrefetchAhead"/> bytes.
    /// </summary>
    public static long AheadOfRows(long rowBytes, int rowsPerPass)
    {
        long pass = rowsPerPass * rowBytes;
        return (MinPrefetchAhead + pass - 1) / pass * pass;
    }

    /// <summary>Ints per block of <see cref="Prepare"/>'s offsets: one 256-bit vector, −k·Σa in lane 0 and zeros.</summary>
    public const int OffsetInts = 8;

    /// <summary>
    /// For the Q8_0 activation row <paramref name="activation"/> of <paramref name="blocks"/> blocks: each block's scale
    /// as a float, and the vector {−k·Σa, 0, …, 0} that turns a sum over unsigned weight bytes into Σ w·a (k = 128 for
    /// Q8_0 weights, 8 for Q4_0).
    /// </summary>
    public static void Prepare(WeightFormat weights, byte* activation, int blocks, float* scales, int* offsets)
    {
        int k = weights switch
        {
            WeightFormat.Q8_0 => 128,
            WeightFormat.Q4_0 => 8,
            _ => throw new ArgumentException($"no four-row kernel for {WeightFormats.Name(weights)}", nameof(weights)),
        };
        float* half = HalfTable.Values;
        var flip = Vector256.Create((byte)0x80);
        for (int b = 0; b < blocks; b++, activation += Q8_0.BlockBytes, offsets += OffsetInts)
        {
            scales[b] = HalfTable.At(half, activation);
            // Σ (a + 128) over the block as four 64-bit partial sums (vpsadbw against zero), less 32·128.
            var sums = Avx2.SumAbsoluteDifferences(Avx.LoadVector256(activation + 2) ^ flip, Vector256<byte>.Zero).AsInt64();
            int sum = (int)(sums.GetElement(0) + sums.GetElement(1) + sums.GetElement(2) + sums.GetElement(3)) - Q8_0.BlockElements * 128;
            Vector256.CreateScalar(-k * sum).Store(offsets);
        }
    }

    /// <summary>y[0..4] = rows w0..w3 (Q8_0, <paramref name="blocks"/> blocks each) · the prepared Q8_0 activation; prefetches 4 KiB ahead in each row.</summary>
    public static void Q8_0Rows(byte* w0, byte* w1, byte* w2, byte* w3, byte* activation, float* scales, int* offsets, int blocks, float* y) =>
        Q8_0Rows(w0, w1, w2, w3, activation, scales, offsets, blocks, y, PrefetchBytes);

    /// <summary>
    /// y[0..4] = rows w0..w3 (Q8_0, <paramref name="blocks"/> blocks each) · the prepared Q8_0 activation, prefetching
    /// (prefetcht1) the line <paramref name="prefetchAhead"/> bytes past each block read: with <see cref="AheadOfRows"/>,
    /// the same block of the rows a few passes on.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q8_0Rows(byte* w0, byte* w1, byte* w2, byte* w3, byte* activation, float* scales, int* offsets, int blocks, float* y, long prefetchAhead)
    {
        float* half = HalfTable.Values;
        var flip = Vector256.Create((byte)0x80);
        var acc0 = Vector256<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        for (int b = 0; b < blocks; b++, activation += Q8_0.BlockBytes, offsets += OffsetInts)
        {
            var a = Avx.LoadVector256((sbyte*)(activation + 2));
            var offset = Avx.LoadVector256(offsets);
            var da = Vector256.Create(scales[b]);
            long at = (long)b * Q8_0.BlockBytes;
            Sse.Prefetch1(w0 + at + prefetchAhead); Sse.Prefetch1(w1 + at + prefetchAhead);
            Sse.Prefetch1(w2 + at + prefetchAhead); Sse.Prefetch1(w3 + at + prefetchAhead);
            acc0 = Q8_0Block(w0 + at, a, offset, flip, half, da, acc0);
            acc1 = Q8_0Block(w1 + at, a, offset, flip, half, da, acc1);
            acc2 = Q8_0Block(w2 + at, a, offset, flip, half, da, acc2);
            acc3 = Q8_0Block(w3 + at, a, offset, flip, half, da, acc3);
        }
        StoreSums(acc0, acc1, acc2, acc3, y);
    }

    /// <summary>
    /// y[0..8] = the eight Q8_0 rows stored one after another from <paramref name="w0"/> (<paramref name="rowBytes"/>
    /// apart, <paramref name="blocks"/> blocks each) · the prepared activation, prefetching (prefetcht1) the line
    /// <paramref name="prefetchAhead"/> bytes past each block read (<see cref="AheadOfRows(long, int)"/> with eight rows).
    /// WHY eight: the same per-row work as <see cref="Q8_0Rows(byte*, byte*, byte*, byte*, byte*, float*, int*, int, float*, long)"/>,
    /// with the activation block, its scale and offset loaded once for eight rows and eight row streams in flight. In a
    /// probe (one thread, a 1 GiB working set, four- and eight-row passes alternated in one process, load 17–19) an
    /// 8192 × 2048 product streamed 15.2–15.4 GB/s at p10 against 14.8–15.3 with four rows, a 2048 × 8192 one 15.1 against
    /// 14.8 — small but in every pair. The integers are those of the four-row kernel; each row's sum is its own.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q8_0EightRows(byte* w0, long rowBytes, byte* activation, float* scales, int* offsets, int blocks, float* y, long prefetchAhead)
    {
        float* half = HalfTable.Values;
        var flip = Vector256.Create((byte)0x80);
        var acc0 = Vector256<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        var acc4 = acc0; var acc5 = acc0; var acc6 = acc0; var acc7 = acc0;
        long r = rowBytes;
        for (int b = 0; b < blocks; b++, activation += Q8_0.BlockBytes, offsets += OffsetInts, w0 += Q8_0.BlockBytes)
        {
            var a = Avx.LoadVector256((sbyte*)(activation + 2));
            var offset = Avx.LoadVector256(offsets);
            var da = Vector256.Create(scales[b]);
            byte* ahead = w0 + prefetchAhead;
            Sse.Prefetch1(ahead); Sse.Prefetch1(ahead + r); Sse.Prefetch1(ahead + 2 * r); Sse.Prefetch1(ahead + 3 * r);
            Sse.Prefetch1(ahead + 4 * r); Sse.Prefetch1(ahead + 5 * r); Sse.Prefetch1(ahead + 6 * r); Sse.Prefetch1(ahead + 7 * r);
            acc0 = Q8_0Block(w0, a, offset, flip, half, da, acc0);
            acc1 = Q8_0Block(w0 + r, a, offset, flip, half, da, acc1);
            acc2 = Q8_0Block(w0 + 2 * r, a, offset, flip, half, da, acc2);
            acc3 = Q8_0Block(w0 + 3 * r, a, offset, flip, half, da, acc3);
            acc4 = Q8_0Block(w0 + 4 * r, a, offset, flip, half, da, acc4);
            acc5 = Q8_0Block(w0 + 5 * r, a, offset, flip, half, da, acc5);
            acc6 = Q8_0Block(w0 + 6 * r, a, offset, flip, half, da, acc6);
            acc7 = Q8_0Block(w0 + 7 * r, a, offset, flip, half, da, acc7);
        }
        StoreSums(acc0, acc1, acc2, acc3, y);
        StoreSums(acc4, acc5, acc6, acc7, y + 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Q8_0Block(byte* w, Vector256<sbyte> a, Vector256<int> offset, Vector256<byte> flip, float* half, Vector256<float> da, Vector256<float> acc)
    {
        var unsigned = Avx.LoadVector256(w + 2) ^ flip; // w + 128
        var dot = AvxVnni.MultiplyWideningAndAdd(offset, unsigned, a);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot) * da, Vector256.Create(HalfTable.At(half, w)), acc);
    }

    /// <summary>y[0..4] = rows w0..w3 (Q4_0, <paramref name="blocks"/> blocks each) · the prepared Q8_0 activation; prefetches 4 KiB ahead in each row.</summary>
    public static void Q4_0Rows(byte* w0, byte* w1, byte* w2, byte* w3, byte* activation, float* scales, int* offsets, int blocks, float* y) =>
        Q4_0Rows(w0, w1, w2, w3, activation, scales, offsets, blocks, y, PrefetchBytes);

    /// <summary>As the Q8_0 overload: rows w0..w3 in Q4_0, prefetching <paramref name="prefetchAhead"/> bytes past each block read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_0Rows(byte* w0, byte* w1, byte* w2, byte* w3, byte* activation, float* scales, int* offsets, int blocks, float* y, long prefetchAhead)
    {
        float* half = HalfTable.Values;
        var low = Vector256.Create((byte)0x0F);
        var acc0 = Vector256<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        for (int b = 0; b < blocks; b++, activation += Q8_0.BlockBytes, offsets += OffsetInts)
        {
            var a = Avx.LoadVector256((sbyte*)(activation + 2));
            var offset = Avx.LoadVector256(offsets);
            var da = Vector256.Create(scales[b]);
            long at = (long)b * Q4_0.BlockBytes;
            Sse.Prefetch1(w0 + at + prefetchAhead); Sse.Prefetch1(w1 + at + prefetchAhead);
            Sse.Prefetch1(w2 + at + prefetchAhead); Sse.Prefetch1(w3 + at + prefetchAhead);
            acc0 = Q4_0Block(w0 + at, a, offset, low, half, da, acc0);
            acc1 = Q4_0Block(w1 + at, a, offset, low, half, da, acc1);
            acc2 = Q4_0Block(w2 + at, a, offset, low, half, da, acc2);
            acc3 = Q4_0Block(w3 + at, a, offset, low, half, da, acc3);
        }
        StoreSums(acc0, acc1, acc2, acc3, y);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Q4_0Block(byte* w, Vector256<sbyte> a, Vector256<int> offset, Vector256<byte> low, float* half, Vector256<float> da, Vector256<float> acc)
    {
        // Elements 0–15 are the low nibbles of the 16 bytes, 16–31 the high ones: the levels q = w + 8, unsigned. The bytes
        // are loaded into both 128-bit lanes (vbroadcasti128, a load only) and the high lane shifted by 4 (vpsrlvq): no
        // insert on the shuffle port, which the four rows' other operations share.
        var both = Avx2.BroadcastVector128ToVector256(w + 2);
        var levels = Avx2.ShiftRightLogicalVariable(both.AsUInt64(), Vector256.Create(0UL, 0UL, 4UL, 4UL)).AsByte() & low;
        var dot = AvxVnni.MultiplyWideningAndAdd(offset, levels, a);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot) * da, Vector256.Create(HalfTable.At(half, w)), acc);
    }

    /// <summary>Asks for <paramref name="bytes"/> bytes from <paramref name="from"/> into L2 (prefetcht1, one per 64-byte line).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Prefetch(byte* from, long bytes)
    {
        if (!Sse.IsSupported) return;
        for (byte* p = from, end = from + bytes; p < end; p += 64) Sse.Prefetch1(p);
    }

    /// <summary>y[i] = Σ lanes of acc_i: three horizontal adds give the four sums in both 128-bit halves' order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreSums(Vector256<float> acc0, Vector256<float> acc1, Vector256<float> acc2, Vector256<float> acc3, float* y)
    {
        // hadd(acc0, acc1) = {a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, a6+a7, b4+b5, b6+b7}; after the second round lane i
        // (of each half) holds a partial sum of row i, and the two halves add up to the totals.
        var sums = Avx.HorizontalAdd(Avx.HorizontalAdd(acc0, acc1), Avx.HorizontalAdd(acc2, acc3));
        (sums.GetLower() + sums.GetUpper()).Store(y);
    }
}
