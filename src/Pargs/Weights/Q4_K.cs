using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// ggml's Q4_K (block_q4_K): super-blocks of 256 values in eight sub-blocks of 32, each with a 6-bit scale and
/// min (packed in 12 bytes) under the super-block's f16 d and dmin; value = d·scale·q − dmin·min, q 4-bit.
/// Bytes: d, dmin, scales[12], qs[128]; each 64 values share 32 bytes, the first 32 in the low nibbles.
/// Its products take the activation row in <see cref="Q8_K"/>.
/// </summary>
public static unsafe class Q4_K
{
    public const int BlockElements = WeightFormats.SuperBlock;
    public const int BlockBytes = 2 + 2 + 12 + BlockElements / 2;
    const int ScalesOffset = 4, QuantsOffset = 16;

    /// <summary>quantize_row_q4_K_ref (no importance matrix), bit for bit.</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> y)
    {
        int blocks = Blocks(x.Length, y.Length);
        Span<byte> L = stackalloc byte[BlockElements];
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockElements, BlockElements);
            var yb = y.Slice(b * BlockBytes, BlockBytes);
            KQuantSearch.ScaleMinSuperBlock(xb, yb, L, nmax: 15, rmin: -1f, nstep: 20);
            var q = yb.Slice(QuantsOffset, 128);
            for (int j = 0; j < BlockElements; j += 64)
                for (int l = 0; l < 32; ++l) q[j / 2 + l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
        }
    }

    /// <summary>dequantize_row_q4_K.</summary>
    public static void Dequantize(ReadOnlySpan<byte> x, Span<float> y)
    {
        int blocks = Blocks(y.Length, x.Length);
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockBytes, BlockBytes);
            var yb = y.Slice(b * BlockElements, BlockElements);
            float d = Float16.ToFloat(Q8_0.ReadHalf(xb)), min = Float16.ToFloat(Q8_0.ReadHalf(xb[2..]));
            var scales = xb.Slice(ScalesOffset, 12);
            for (int c = 0; c < 4; c++)
            {
                KQuantSearch.ScaleMin(2 * c, scales, out int sc1, out int m1);
                KQuantSearch.ScaleMin(2 * c + 1, scales, out int sc2, out int m2);
                float d1 = d * sc1, min1 = min * m1, d2 = d * sc2, min2 = min * m2;
                for (int l = 0; l < 32; l++)
                {
                    byte q = xb[QuantsOffset + 32 * c + l];
                    yb[64 * c + l] = d1 * (q & 0xF) - min1;
                    yb[64 * c + 32 + l] = d2 * (q >> 4) - min2;
                }
            }
        }
    }

    /// <summary>A Q4_K weight row times a <see cref="Q8_K"/> activation row of <paramref name="blocks"/> super-blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(byte* w, byte* a, int blocks)
    {
        if (!Avx2.IsSupported) return DotScalar(w, a, blocks);
        bool vnni = IntegerDot.UseVnni;
        float* halves = HalfTable.Values; // d and dmin as one load each
        var acc = Vector256<float>.Zero;
        var minAcc = Vector256<float>.Zero;
        var low4 = Vector256.Create((byte)0x0F);
        // vpshufb patterns over the eight sub-block scales as int16 words: sub-block j's scale in every lane. WHY: a
        // scale taken out of the packed word by a shift and broadcast from a general register costs three operations,
        // two of them on the shuffle port, per sub-block; this is one (as Q6_K.Dot).
        var pick0 = Vector256.Create((ushort)0x0100).AsByte(); var pick1 = Vector256.Create((ushort)0x0302).AsByte();
        var pick2 = Vector256.Create((ushort)0x0504).AsByte(); var pick3 = Vector256.Create((ushort)0x0706).AsByte();
        var pick4 = Vector256.Create((ushort)0x0908).AsByte(); var pick5 = Vector256.Create((ushort)0x0B0A).AsByte();
        var pick6 = Vector256.Create((ushort)0x0D0C).AsByte(); var pick7 = Vector256.Create((ushort)0x0F0E).AsByte();
        for (int b = 0; b < blocks; b++, w += BlockBytes, a += Q8_K.BlockBytes)
        {
            // A row is one stream with the next rows right behind it: 4 KiB ahead crosses the page boundaries where the
            // hardware prefetchers stop (as Q6_K.Dot; a 144-byte block spans at most three lines).
            Sse.Prefetch1(w + PrefetchBytes); Sse.Prefetch1(w + PrefetchBytes + 64); Sse.Prefetch1(w + PrefetchBytes + 128);
            float da = Q8_K.Scale(a);
            ScaleMinWords(w + ScalesOffset, out ulong sc, out ulong mn);
            // dmin·Σ_j min_j·(bsum_2j + bsum_2j+1): each min widened to two 16-bit lanes, one vpmaddwd with the sums.
            var mins16 = Sse41.ConvertToVector128Int16(Vector128.CreateScalar(mn).AsByte());
            var minPairs = Vector256.Create(Sse2.UnpackLow(mins16, mins16), Sse2.UnpackHigh(mins16, mins16));
            var minSums = Avx2.MultiplyAddAdjacent(Avx.LoadVector256((short*)(a + Q8_K.SumsOffset)), minPairs);
            minAcc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(minSums), Vector256.Create(HalfTable.At(halves, w + 2) * da), minAcc);
            var scales16 = Sse41.ConvertToVector128Int16(Vector128.CreateScalar(sc).AsByte()).AsByte();
            var scales = Vector256.Create(scales16, scales16);
            var isum = Vector256<int>.Zero;
            byte* q = w + QuantsOffset;
            sbyte* qa = (sbyte*)(a + Q8_K.QuantsOffset);
            // Chunk c: 32 packed bytes, low nibbles = sub-block 2c, high nibbles = sub-block 2c + 1.
            isum = Chunk(isum, Avx.LoadVector256(q), qa, Avx2.Shuffle(scales, pick0), Avx2.Shuffle(scales, pick1), low4, vnni);
            isum = Chunk(isum, Avx.LoadVector256(q + 32), qa + 64, Avx2.Shuffle(scales, pick2), Avx2.Shuffle(scales, pick3), low4, vnni);
            isum = Chunk(isum, Avx.LoadVector256(q + 64), qa + 128, Avx2.Shuffle(scales, pick4), Avx2.Shuffle(scales, pick5), low4, vnni);
            isum = Chunk(isum, Avx.LoadVector256(q + 96), qa + 192, Avx2.Shuffle(scales, pick6), Avx2.Shuffle(scales, pick7), low4, vnni);
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Vector256.Create(HalfTable.At(halves, w) * da), acc);
        }
        return Vector256.Sum(acc - minAcc);
    }

    /// <summary>How far ahead of the block being read <see cref="Dot"/> prefetches its row stream.</summary>
    const int PrefetchBytes = 4096;

    /// <summary>
    /// <paramref name="isum"/> plus 64 values of a block: the low nibbles of <paramref name="packed"/> times activation bytes
    /// qa[0..32] scaled by <paramref name="lowScale"/>, the high nibbles times qa[32..64] by <paramref name="highScale"/>
    /// (int16 lanes). With AVX-VNNI each scaling and sum is one vpdpwssd (same integers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Chunk(Vector256<int> isum, Vector256<byte> packed, sbyte* qa, Vector256<byte> lowScale, Vector256<byte> highScale, Vector256<byte> low4, bool vnni)
    {
        var lo = IntegerDot.UnsignedPairs(packed & low4, Avx.LoadVector256(qa));
        var hi = IntegerDot.UnsignedPairs(Avx2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & low4, Avx.LoadVector256(qa + 32));
        if (vnni) return AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(isum, lo, lowScale.AsInt16()), hi, highScale.AsInt16());
        return isum + IntegerDot.Scaled(lo, lowScale.AsInt16()) + IntegerDot.Scaled(hi, highScale.AsInt16());
    }

    public static float DotScalar(byte* w, byte* a, int blocks)
    {
        float sum = 0;
        byte* sc = stackalloc byte[8];
        byte* mn = stackalloc byte[8];
        for (int b = 0; b < blocks; b++, w += BlockBytes, a += Q8_K.BlockBytes)
        {
            float da = Q8_K.Scale(a);
            UnpackScaleMins(w + ScalesOffset, sc, mn);
            int isum = 0, mins = 0;
            for (int c = 0; c < 4; c++)
            {
                int lo = 0, hi = 0;
                for (int l = 0; l < 32; l++)
                {
                    byte q = w[QuantsOffset + 32 * c + l];
                    lo += (q & 0xF) * (sbyte)a[Q8_K.QuantsOffset + 64 * c + l];
                    hi += (q >> 4) * (sbyte)a[Q8_K.QuantsOffset + 64 * c + 32 + l];
                }
                isum += sc[2 * c] * lo + sc[2 * c + 1] * hi;
            }
            for (int j = 0; j < 8; j++) mins += mn[j] * (Q8_K.Sum16(a, 2 * j) + Q8_K.Sum16(a, 2 * j + 1));
            sum += Q8_0.HalfAt(w) * da * isum - Q8_0.HalfAt(w + 2) * da * mins;
        }
        return sum;
    }

    /// <summary>
    /// The eight 6-bit scales and mins of a block's 12 packed bytes as eight bytes each (byte j of the word =
    /// sub-block j), unpacked four at a time in 32-bit words: the layout <see cref="KQuantSearch.ScaleMin"/> reads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ScaleMinWords(byte* packed, out ulong scales, out ulong mins)
    {
        uint u0 = Unsafe.ReadUnaligned<uint>(packed), u1 = Unsafe.ReadUnaligned<uint>(packed + 4), u2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        uint scalesHigh = (u2 & 0x0F0F0F0F) | (((u0 >> 6) & 0x03030303) << 4);
        uint minsHigh = ((u2 >> 4) & 0x0F0F0F0F) | (((u1 >> 6) & 0x03030303) << 4);
        scales = (u0 & 0x3F3F3F3F) | (ulong)scalesHigh << 32;
        mins = (u1 & 0x3F3F3F3F) | (ulong)minsHigh << 32;
    }

    /// <summary>The eight 6-bit scales and mins of a block's 12 packed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScaleMins(byte* packed, byte* scales, byte* mins)
    {
        var q = new ReadOnlySpan<byte>(packed, 12);
        for (int j = 0; j < 8; j++)
        {
            KQuantSearch.ScaleMin(j, q, out int s, out int m);
            scales[j] = (byte)s;
            mins[j] = (byte)m;
        }
    }

    /// <summary>
    /// One block as unsigned levels u[256] (0..15) and per 32-value sub-block scale s = d·scale and min = dmin·m, so
    /// that value = s·u − min exactly as <see cref="Dequantize"/> computes it: the panel form of <see cref="IntegerGemm"/>.
    /// </summary>
    internal static void Levels(byte* block, byte* u, float* s, float* min)
    {
        float d = Q8_0.HalfAt(block), dmin = Q8_0.HalfAt(block + 2);
        byte* sc = stackalloc byte[8], mn = stackalloc byte[8];
        UnpackScaleMins(block + ScalesOffset, sc, mn);
        for (int j = 0; j < 8; j++)
        {
            s[j] = d * sc[j];
            min[j] = dmin * mn[j];
        }
        var low4 = Vector256.Create((byte)0x0F);
        for (int c = 0; c < 4; c++)
        {
            var q = Avx.LoadVector256(block + QuantsOffset + 32 * c);
            (q & low4).Store(u + 64 * c);
            (Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & low4).Store(u + 64 * c + 32);
        }
    }

    static int Blocks(int elements, int bytes)
    {
        if (elements % BlockElements != 0) throw new ArgumentException($"q4_K rows are whole blocks of {BlockElements}, got {elements} values");
        int blocks = elements / BlockElements;
        if (bytes < blocks * BlockBytes) throw new ArgumentException($"{blocks} q4_K blocks need {blocks * BlockBytes} bytes, got {bytes}");
        return blocks;
    }
}
