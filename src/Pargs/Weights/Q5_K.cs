using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// ggml's Q5_K (block_q5_K): <see cref="Q4_K"/> with a fifth bit per value. Bytes: d, dmin, scales[12],
/// qh[32], qs[128]; value = d·scale·q − dmin·min with q = low nibble + 16·(high bit). Values 64c..64c+31 take
/// bit 2c of qh[l], values 64c+32..64c+63 bit 2c+1. Products take the activation row in <see cref="Q8_K"/>.
/// </summary>
public static unsafe class Q5_K
{
    public const int BlockElements = WeightFormats.SuperBlock;
    public const int BlockBytes = 2 + 2 + 12 + BlockElements / 8 + BlockElements / 2;
    const int ScalesOffset = 4, HighBitsOffset = 16, QuantsOffset = 48;

    /// <summary>quantize_row_q5_K_ref (no importance matrix), bit for bit.</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> y)
    {
        int blocks = Blocks(x.Length, y.Length);
        Span<byte> L = stackalloc byte[BlockElements];
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockElements, BlockElements);
            var yb = y.Slice(b * BlockBytes, BlockBytes);
            KQuantSearch.ScaleMinSuperBlock(xb, yb, L, nmax: 31, rmin: -0.5f, nstep: 15);
            var qh = yb.Slice(HighBitsOffset, 32);
            var ql = yb.Slice(QuantsOffset, 128);
            qh.Clear();
            int m1 = 1, m2 = 2;
            for (int n = 0; n < BlockElements; n += 64)
            {
                for (int j = 0; j < 32; ++j)
                {
                    int l1 = L[n + j];
                    if (l1 > 15) { l1 -= 16; qh[j] |= (byte)m1; }
                    int l2 = L[n + j + 32];
                    if (l2 > 15) { l2 -= 16; qh[j] |= (byte)m2; }
                    ql[n / 2 + j] = (byte)(l1 | (l2 << 4));
                }
                m1 <<= 2; m2 <<= 2;
            }
        }
    }

    /// <summary>dequantize_row_q5_K.</summary>
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
                int u1 = 1 << (2 * c), u2 = 2 << (2 * c);
                for (int l = 0; l < 32; l++)
                {
                    byte q = xb[QuantsOffset + 32 * c + l], h = xb[HighBitsOffset + l];
                    yb[64 * c + l] = d1 * ((q & 0xF) + ((h & u1) != 0 ? 16 : 0)) - min1;
                    yb[64 * c + 32 + l] = d2 * ((q >> 4) + ((h & u2) != 0 ? 16 : 0)) - min2;
                }
            }
        }
    }

    /// <summary>A Q5_K weight row times a <see cref="Q8_K"/> activation row of <paramref name="blocks"/> super-blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(byte* w, byte* a, int blocks)
    {
        if (!Avx2.IsSupported) return DotScalar(w, a, blocks);
        var acc = Vector256<float>.Zero;
        var minAcc = Vector256<float>.Zero;
        var low4 = Vector256.Create((byte)0x0F);
        var bit0 = Vector256.Create((byte)0x01);
        for (int b = 0; b < blocks; b++, w += BlockBytes, a += Q8_K.BlockBytes)
        {
            // A row is one stream with the next rows right behind it: 4 KiB ahead crosses the page boundaries where the
            // hardware prefetchers stop (as Q4_K.Dot; a 176-byte block spans at most four lines).
            Sse.Prefetch1(w + PrefetchBytes); Sse.Prefetch1(w + PrefetchBytes + 64);
            Sse.Prefetch1(w + PrefetchBytes + 128); Sse.Prefetch1(w + PrefetchBytes + 192);
            float da = Q8_K.Scale(a);
            Q4_K.ScaleMinWords(w + ScalesOffset, out ulong sc, out ulong mn);
            // dmin·Σ_j min_j·(bsum_2j + bsum_2j+1): each min widened to two 16-bit lanes, one vpmaddwd with the sums.
            var mins16 = Sse41.ConvertToVector128Int16(Vector128.CreateScalar(mn).AsByte());
            var minPairs = Vector256.Create(Sse2.UnpackLow(mins16, mins16), Sse2.UnpackHigh(mins16, mins16));
            var minSums = Avx2.MultiplyAddAdjacent(Avx.LoadVector256((short*)(a + Q8_K.SumsOffset)), minPairs);
            minAcc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(minSums), Vector256.Create(Q8_0.HalfAt(w + 2) * da), minAcc);
            var isum = Vector256<int>.Zero;
            var high = Avx.LoadVector256(w + HighBitsOffset).AsUInt16();
            byte* q = w + QuantsOffset;
            sbyte* qa = (sbyte*)(a + Q8_K.QuantsOffset);
            // Chunk c takes bits 2c and 2c+1 of each qh byte: shift the 16-bit lanes right by 2 per chunk (by a
            // constant: a variable immediate makes the JIT call a slow fallback) and read bits 0 and 1 of every byte;
            // bits shifted in from the neighbouring byte land above bit 1 and are masked off.
            for (int c = 0; c < 4; c++, q += 32, qa += 64, high = Avx2.ShiftRightLogical(high, 2))
            {
                var packed = Avx.LoadVector256(q);
                var h1 = Avx2.ShiftLeftLogical((high.AsByte() & bit0).AsUInt16(), 4).AsByte();
                var h2 = Avx2.ShiftLeftLogical((Avx2.ShiftRightLogical(high, 1).AsByte() & bit0).AsUInt16(), 4).AsByte();
                var lo = (packed & low4) | h1;
                var hi = (Avx2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & low4) | h2;
                isum += IntegerDot.Scaled(IntegerDot.UnsignedPairs(lo, Avx.LoadVector256(qa)), Vector256.Create((short)(byte)(sc >> (16 * c))));
                isum += IntegerDot.Scaled(IntegerDot.UnsignedPairs(hi, Avx.LoadVector256(qa + 32)), Vector256.Create((short)(byte)(sc >> (16 * c + 8))));
            }
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Vector256.Create(Q8_0.HalfAt(w) * da), acc);
        }
        return Vector256.Sum(acc - minAcc);
    }

    /// <summary>How far ahead of the block being read <see cref="Dot"/> prefetches its row stream.</summary>
    const int PrefetchBytes = 4096;

    public static float DotScalar(byte* w, byte* a, int blocks)
    {
        float sum = 0;
        byte* sc = stackalloc byte[8];
        byte* mn = stackalloc byte[8];
        for (int b = 0; b < blocks; b++, w += BlockBytes, a += Q8_K.BlockBytes)
        {
            float da = Q8_K.Scale(a);
            Q4_K.UnpackScaleMins(w + ScalesOffset, sc, mn);
            int isum = 0, mins = 0;
            for (int c = 0; c < 4; c++)
            {
                int lo = 0, hi = 0;
                for (int l = 0; l < 32; l++)
                {
                    byte q = w[QuantsOffset + 32 * c + l], h = w[HighBitsOffset + l];
                    lo += ((q & 0xF) | ((h >> (2 * c)) & 1) << 4) * (sbyte)a[Q8_K.QuantsOffset + 64 * c + l];
                    hi += ((q >> 4) | ((h >> (2 * c + 1)) & 1) << 4) * (sbyte)a[Q8_K.QuantsOffset + 64 * c + 32 + l];
                }
                isum += sc[2 * c] * lo + sc[2 * c + 1] * hi;
            }
            for (int j = 0; j < 8; j++) mins += mn[j] * (Q8_K.Sum16(a, 2 * j) + Q8_K.Sum16(a, 2 * j + 1));
            sum += Q8_0.HalfAt(w) * da * isum - Q8_0.HalfAt(w + 2) * da * mins;
        }
        return sum;
    }

    /// <summary>
    /// One block as unsigned levels u[256] (0..31) and per 32-value sub-block scale s = d·scale and min = dmin·m
    /// (value = s·u − min, as <see cref="Dequantize"/>): the panel form of <see cref="IntegerGemm"/>.
    /// </summary>
    internal static void Levels(byte* block, byte* u, float* s, float* min)
    {
        float d = Q8_0.HalfAt(block), dmin = Q8_0.HalfAt(block + 2);
        byte* sc = stackalloc byte[8], mn = stackalloc byte[8];
        Q4_K.UnpackScaleMins(block + ScalesOffset, sc, mn);
        for (int j = 0; j < 8; j++)
        {
            s[j] = d * sc[j];
            min[j] = dmin * mn[j];
        }
        var low4 = Vector256.Create((byte)0x0F);
        var sixteen = Vector256.Create((byte)16);
        var high = Avx.LoadVector256(block + HighBitsOffset);
        for (int c = 0; c < 4; c++)
        {
            var q = Avx.LoadVector256(block + QuantsOffset + 32 * c);
            var bit1 = Vector256.Create((byte)(1 << (2 * c)));
            var bit2 = Vector256.Create((byte)(2 << (2 * c)));
            ((q & low4) | (Vector256.Equals(high & bit1, bit1) & sixteen)).Store(u + 64 * c);
            ((Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & low4) | (Vector256.Equals(high & bit2, bit2) & sixteen)).Store(u + 64 * c + 32);
        }
    }

    static int Blocks(int elements, int bytes)
    {
        if (elements % BlockElements != 0) throw new ArgumentException($"q5_K rows are whole blocks of {BlockElements}, got {elements} values");
        int blocks = elements / BlockElements;
        if (bytes < blocks * BlockBytes) throw new ArgumentException($"{blocks} q5_K blocks need {blocks * BlockBytes} bytes, got {bytes}");
        return blocks;
    }
}
