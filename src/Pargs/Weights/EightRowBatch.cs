using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// Q8_0 / Q4_0 weights times a few activation rows (2–15: a reward model's k candidates, a small decoding batch):
/// eight weight rows per pass, transposed in registers, each weight vector used for every activation row.
/// <para>Per block, the eight rows' 32 levels (as unsigned bytes: a Q8_0 byte with its top bit flipped is w + 128, a
/// Q4_0 nibble is w + 8) are loaded as eight vectors of eight 4-byte groups and transposed (24 shuffles), so vector g
/// holds group g of all eight rows — the panel layout of <see cref="IntegerGemm"/>. For each activation row, eight
/// <c>vpdpbusd</c> against the broadcast groups of that row give the eight rows' integer block sums in the eight
/// lanes (started from −k·Σa, which takes the +k off exactly); one conversion and one FMA by (weight scale · activation
/// scale) add the block to the eight outputs.</para>
/// <para>WHY: with <see cref="FourRowDot"/> per activation row every (weight row, activation row, block) costs a
/// conversion, a multiply and an FMA on the two floating-point ports (plus the weight's reload, flip and scale), so ten
/// candidates ran at a tenth of the one-row speed. Here the float work is one conversion, one multiply and one FMA per
/// eight weight rows, and the weight bytes, their flip and the transposition are paid once for all activation rows.</para>
/// <para>Each output's arithmetic is that of <see cref="IntegerGemm"/>'s tiles (exact integer block sums, then
/// f = fma(float(sum), s_w·s_a, f) block by block), whatever the number of rows sharing the product: a row's result is
/// the same bits in a product of 2 rows, of 15 or of 512.</para>
/// </summary>
public static unsafe class EightRowBatch
{
    /// <summary>Weight rows per pass: the eight int32 lanes of a vector.</summary>
    public const int Rows = 8;

    /// <summary>Whether products of <paramref name="format"/> weights run here on this CPU (AVX-VNNI and FMA).</summary>
    public static bool Takes(WeightFormat format) => FourRowDot.Takes(format);

    /// <summary>
    /// y[r·<paramref name="yStride"/> + lane] = row <paramref name="rows"/>[lane] · activation row r, for r &lt; <paramref name="n"/>
    /// and lane &lt; <paramref name="valid"/> (the other entries of <paramref name="rows"/> must still point at readable rows:
    /// they are computed and dropped). The activation rows are Q8_0 (<paramref name="activationRowBytes"/> apart) with
    /// their block scales and offsets from <see cref="FourRowDot.Prepare"/> (row r's at r·blocks); <paramref name="sums"/>
    /// is scratch for n·8 floats. <paramref name="next"/>: the eight rows of the next pass, prefetched (null: none).
    /// </summary>
    // Compiled once, fully optimized (as the loops it calls). WHY: a tiered method is rejitted mid-run with its callee
    // inlined; the same speed either way (harness), but one compilation keeps runs and profiles comparable.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Product(WeightFormat format, byte** rows, int blocks, byte* activations, long activationRowBytes,
                               float* scales, int* offsets, int n, float* sums, float* y, long yStride, int valid, byte** next = null)
    {
        if (format == WeightFormat.Q4_0) Q4_0Product(rows, blocks, activations, activationRowBytes, scales, offsets, n, sums, next);
        else Q8_0Product(rows, blocks, activations, activationRowBytes, scales, offsets, n, sums, next);
        for (int r = 0; r < n; r++)
        {
            float* from = sums + r * Rows, to = y + r * yStride;
            if (valid == Rows) Avx.LoadVector256(from).Store(to);
            else for (int lane = 0; lane < valid; lane++) to[lane] = from[lane];
        }
    }

    // One compiled loop per format. WHY: with the format a run-time flag, the JIT tested it at each of a block's eight
    // row loads; a constant argument to the inlined body removes the tests.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q8_0Product(byte** rows, int blocks, byte* activations, long activationRowBytes, float* scales, int* offsets, int n, float* sums, byte** next) =>
        Blocks(false, rows, blocks, activations, activationRowBytes, scales, offsets, n, sums, next);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4_0Product(byte** rows, int blocks, byte* activations, long activationRowBytes, float* scales, int* offsets, int n, float* sums, byte** next) =>
        Blocks(true, rows, blocks, activations, activationRowBytes, scales, offsets, n, sums, next);

    /// <summary>sums[r·8 + lane] = row <paramref name="rows"/>[lane] · activation row r, block by block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Blocks(bool q4, byte** rows, int blocks, byte* activations, long activationRowBytes, float* scales, int* offsets, int n, float* sums, byte** next)
    {
        long blockBytes = q4 ? Q4_0.BlockBytes : Q8_0.BlockBytes;
        float* half = HalfTable.Values;
        new Span<float>(sums, n * Rows).Clear();
        byte* r0 = rows[0], r1 = rows[1], r2 = rows[2], r3 = rows[3], r4 = rows[4], r5 = rows[5], r6 = rows[6], r7 = rows[7];
        long offsetStride = (long)blocks * FourRowDot.OffsetInts;
        for (int b = 0; b < blocks; b++, r0 += blockBytes, r1 += blockBytes, r2 += blockBytes, r3 += blockBytes,
                                         r4 += blockBytes, r5 += blockBytes, r6 += blockBytes, r7 += blockBytes)
        {
            long at = b * blockBytes;
            if (next != null)
            {
                // The same block of the next pass's eight rows, one pass ahead. WHY: the hardware prefetchers stop at page
                // boundaries, and 4 KiB ahead in a short row (~1 KiB) lands in rows this pass already reads, so each pass
                // began on demand misses in eight streams (a 4864 × 896 Q8_0 product × 10 rows from memory: 1.3 → 0.7 ms,
                // as fast as in cache; 896 × 4864, long rows: 0.8 → 0.7 ms against 4 KiB ahead in each row).
                Sse.Prefetch1(next[0] + at); Sse.Prefetch1(next[1] + at); Sse.Prefetch1(next[2] + at); Sse.Prefetch1(next[3] + at);
                Sse.Prefetch1(next[4] + at); Sse.Prefetch1(next[5] + at); Sse.Prefetch1(next[6] + at); Sse.Prefetch1(next[7] + at);
            }
            Transposed(q4, r0, r1, r2, r3, r4, r5, r6, r7, out var w0, out var w1, out var w2, out var w3, out var w4, out var w5, out var w6, out var w7);
            // Built in registers. WHY: eight scalar stores read back as one vector load cannot be store-forwarded, and the
            // load then waited for the stores to retire at every block.
            var weightScale = Vector256.Create(HalfTable.At(half, r0), HalfTable.At(half, r1), HalfTable.At(half, r2), HalfTable.At(half, r3),
                                               HalfTable.At(half, r4), HalfTable.At(half, r5), HalfTable.At(half, r6), HalfTable.At(half, r7));
            byte* a = activations + (long)b * Q8_0.BlockBytes + 2;
            float* scale = scales + b;
            int* offset = offsets + (long)b * FourRowDot.OffsetInts;
            float* sum = sums;
            int r = 0;
            // Two activation rows per iteration, pointers advanced rather than indexed, the eight row pointers stepped per
            // block rather than offset. WHY: the loop is bound by instructions issued (it ran ~1 vpdpbusd per cycle where
            // the core sustains 2), and one row per iteration spent a quarter of its instructions on an index multiply and
            // on reloading spilled pointers (a 4864 × 896 Q8_0 product × 10 rows, p10: 0.64 → 0.48–0.53 ms, same bits).
            for (; r + 2 <= n; r += 2, a += 2 * activationRowBytes, scale += 2 * blocks, offset += 2 * offsetStride, sum += 2 * Rows)
            {
                var s0 = BlockSums(Vector256.Create(*offset), w0, w1, w2, w3, w4, w5, w6, w7, a);
                var s1 = BlockSums(Vector256.Create(offset[offsetStride]), w0, w1, w2, w3, w4, w5, w6, w7, a + activationRowBytes);
                Fma.MultiplyAdd(Avx.ConvertToVector256Single(s0), weightScale * Vector256.Create(*scale), Avx.LoadVector256(sum)).Store(sum);
                Fma.MultiplyAdd(Avx.ConvertToVector256Single(s1), weightScale * Vector256.Create(scale[blocks]), Avx.LoadVector256(sum + Rows)).Store(sum + Rows);
            }
            if (r < n)
            {
                var s0 = BlockSums(Vector256.Create(*offset), w0, w1, w2, w3, w4, w5, w6, w7, a);
                Fma.MultiplyAdd(Avx.ConvertToVector256Single(s0), weightScale * Vector256.Create(*scale), Avx.LoadVector256(sum)).Store(sum);
            }
        }
    }

    /// <summary>
    /// The eight rows' exact integer sums over one block against one activation block <paramref name="a"/> (its 32 levels),
    /// started from <paramref name="start"/> (−k·Σa). Two chains (even and odd groups): vpdpbusd's latency would otherwise
    /// bound a row's block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> BlockSums(Vector256<int> start, Vector256<byte> w0, Vector256<byte> w1, Vector256<byte> w2, Vector256<byte> w3,
                                    Vector256<byte> w4, Vector256<byte> w5, Vector256<byte> w6, Vector256<byte> w7, byte* a)
    {
        var i = start;
        var j = Vector256<int>.Zero;
        i = AvxVnni.MultiplyWideningAndAdd(i, w0, Vector256.Create(*(int*)a).AsSByte());
        j = AvxVnni.MultiplyWideningAndAdd(j, w1, Vector256.Create(*(int*)(a + 4)).AsSByte());
        i = AvxVnni.MultiplyWideningAndAdd(i, w2, Vector256.Create(*(int*)(a + 8)).AsSByte());
        j = AvxVnni.MultiplyWideningAndAdd(j, w3, Vector256.Create(*(int*)(a + 12)).AsSByte());
        i = AvxVnni.MultiplyWideningAndAdd(i, w4, Vector256.Create(*(int*)(a + 16)).AsSByte());
        j = AvxVnni.MultiplyWideningAndAdd(j, w5, Vector256.Create(*(int*)(a + 20)).AsSByte());
        i = AvxVnni.MultiplyWideningAndAdd(i, w6, Vector256.Create(*(int*)(a + 24)).AsSByte());
        j = AvxVnni.MultiplyWideningAndAdd(j, w7, Vector256.Create(*(int*)(a + 28)).AsSByte());
        return i + j;
    }

    /// <summary>
    /// One block of eight Q8_0 or Q4_0 rows as unsigned levels, transposed: <paramref name="g0"/>…<paramref name="g7"/> hold
    /// elements 4g…4g+3 of row 0 in lane 0, of row 1 in lane 1, … (the layout <see cref="IntegerGemm"/>'s tiles read).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transposed(bool q4, byte* b0, byte* b1, byte* b2, byte* b3, byte* b4, byte* b5, byte* b6, byte* b7,
                                  out Vector256<byte> g0, out Vector256<byte> g1, out Vector256<byte> g2, out Vector256<byte> g3,
                                  out Vector256<byte> g4, out Vector256<byte> g5, out Vector256<byte> g6, out Vector256<byte> g7)
    {
        var x0 = Levels(q4, b0).AsInt32(); var x1 = Levels(q4, b1).AsInt32();
        var x2 = Levels(q4, b2).AsInt32(); var x3 = Levels(q4, b3).AsInt32();
        var x4 = Levels(q4, b4).AsInt32(); var x5 = Levels(q4, b5).AsInt32();
        var x6 = Levels(q4, b6).AsInt32(); var x7 = Levels(q4, b7).AsInt32();
        // Within each 128-bit half: pairs of rows interleaved by group, then by pairs of groups (a 4 × 4 transpose per half
        // and per four rows), so t0 = {rows 0–3 of group 0 | rows 0–3 of group 4}.
        var p0 = Avx2.UnpackLow(x0, x1); var p1 = Avx2.UnpackHigh(x0, x1);
        var p2 = Avx2.UnpackLow(x2, x3); var p3 = Avx2.UnpackHigh(x2, x3);
        var p4 = Avx2.UnpackLow(x4, x5); var p5 = Avx2.UnpackHigh(x4, x5);
        var p6 = Avx2.UnpackLow(x6, x7); var p7 = Avx2.UnpackHigh(x6, x7);
        var t0 = Avx2.UnpackLow(p0.AsInt64(), p2.AsInt64()); var t1 = Avx2.UnpackHigh(p0.AsInt64(), p2.AsInt64());
        var t2 = Avx2.UnpackLow(p1.AsInt64(), p3.AsInt64()); var t3 = Avx2.UnpackHigh(p1.AsInt64(), p3.AsInt64());
        var t4 = Avx2.UnpackLow(p4.AsInt64(), p6.AsInt64()); var t5 = Avx2.UnpackHigh(p4.AsInt64(), p6.AsInt64());
        var t6 = Avx2.UnpackLow(p5.AsInt64(), p7.AsInt64()); var t7 = Avx2.UnpackHigh(p5.AsInt64(), p7.AsInt64());
        // Rows 0–3 and 4–7 of the same group side by side.
        g0 = Avx2.Permute2x128(t0, t4, 0x20).AsByte(); g4 = Avx2.Permute2x128(t0, t4, 0x31).AsByte();
        g1 = Avx2.Permute2x128(t1, t5, 0x20).AsByte(); g5 = Avx2.Permute2x128(t1, t5, 0x31).AsByte();
        g2 = Avx2.Permute2x128(t2, t6, 0x20).AsByte(); g6 = Avx2.Permute2x128(t2, t6, 0x31).AsByte();
        g3 = Avx2.Permute2x128(t3, t7, 0x20).AsByte(); g7 = Avx2.Permute2x128(t3, t7, 0x31).AsByte();
    }

    /// <summary>A Q8_0 / Q4_0 block's 32 levels as unsigned bytes in element order (Q8_0: w + 128; Q4_0: the nibble, w + 8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> Levels(bool q4, byte* block)
    {
        if (!q4) return Avx.LoadVector256(block + 2) ^ Vector256.Create((byte)0x80);
        // Elements 0–15 are the low nibbles of the 16 bytes, 16–31 the high ones.
        var packed = Sse2.LoadVector128(block + 2);
        return Vector256.Create(packed, Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte()) & Vector256.Create((byte)0x0F);
    }
}
