using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// ggml's Q6_K (block_q6_K): super-blocks of 256 values in 16 groups of 16, each with a signed 8-bit scale,
/// under one f16 d; value = d·scale·(q − 32), q 6-bit. Bytes: ql[128] (low 4 bits), qh[64] (high 2 bits),
/// scales[16], d. In each half of 128 values, value l (0..31) of quarter k comes from ql[l + 32·(k mod 2)]
/// (low nibble for k &lt; 2, high for k ≥ 2) and bits 2k..2k+1 of qh[l]. The group of value e is e/16.
/// Products take the activation row in <see cref="Q8_K"/>.
/// </summary>
public static unsafe class Q6_K
{
    public const int BlockElements = WeightFormats.SuperBlock;
    public const int BlockBytes = BlockElements / 2 + BlockElements / 4 + BlockElements / 16 + 2;
    const int HighBitsOffset = 128, ScalesOffset = 192, ScaleOffset = 208;

    /// <summary>quantize_row_q6_K_ref (no importance matrix), bit for bit.</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> y)
    {
        int blocks = Blocks(x.Length, y.Length);
        Span<sbyte> L = stackalloc sbyte[BlockElements];
        Span<float> scales = stackalloc float[16];
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockElements, BlockElements);
            var yb = y.Slice(b * BlockBytes, BlockBytes);
            float maxScale = 0, maxAbsScale = 0;
            for (int g = 0; g < 16; ++g)
            {
                float scale = KQuantSearch.MakeQxQuants(16, 32, xb.Slice(16 * g, 16), L.Slice(16 * g, 16));
                scales[g] = scale;
                if (MathF.Abs(scale) > maxAbsScale)
                {
                    maxAbsScale = MathF.Abs(scale);
                    maxScale = scale;
                }
            }
            if (maxAbsScale < KQuantSearch.GroupMaxEps)
            {
                yb.Clear();
                continue;
            }
            float iscale = -128f / maxScale;
            Q8_0.WriteHalf(yb[ScaleOffset..], Float16.FromFloat(1 / iscale));
            for (int g = 0; g < 16; ++g)
                yb[ScalesOffset + g] = (byte)(sbyte)Math.Min(127, KQuantSearch.NearestInt(iscale * scales[g]));
            float dStored = Float16.ToFloat(Q8_0.ReadHalf(yb[ScaleOffset..]));
            for (int g = 0; g < 16; ++g)
            {
                float d = dStored * (sbyte)yb[ScalesOffset + g];
                if (d == 0) continue;
                for (int i = 0; i < 16; ++i)
                {
                    int l = KQuantSearch.NearestInt(xb[16 * g + i] / d);
                    L[16 * g + i] = (sbyte)(Math.Max(-32, Math.Min(31, l)) + 32);
                }
            }
            for (int j = 0; j < BlockElements; j += 128)
            {
                var ql = yb.Slice(j / 2, 64);
                var qh = yb.Slice(HighBitsOffset + j / 4, 32);
                for (int l = 0; l < 32; ++l)
                {
                    int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                    ql[l] = (byte)(q1 | (q3 << 4));
                    ql[l + 32] = (byte)(q2 | (q4 << 4));
                    qh[l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
                }
            }
        }
    }

    /// <summary>dequantize_row_q6_K.</summary>
    public static void Dequantize(ReadOnlySpan<byte> x, Span<float> y)
    {
        int blocks = Blocks(y.Length, x.Length);
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockBytes, BlockBytes);
            var yb = y.Slice(b * BlockElements, BlockElements);
            float d = Float16.ToFloat(Q8_0.ReadHalf(xb[ScaleOffset..]));
            for (int e = 0; e < BlockElements; e++) yb[e] = d * (sbyte)xb[ScalesOffset + e / 16] * (Level(xb, e) - 32);
        }
    }

    /// <summary>The stored 6-bit level (0..63) of value <paramref name="e"/> of a block.</summary>
    static int Level(ReadOnlySpan<byte> block, int e)
    {
        int half = e / 128, k = e % 128 / 32, l = e % 32;
        byte low = block[64 * half + l + 32 * (k & 1)];
        int nibble = k < 2 ? low & 0xF : low >> 4;
        return nibble | ((block[HighBitsOffset + 32 * half + l] >> (2 * k)) & 3) << 4;
    }

    /// <summary>A Q6_K weight row times a <see cref="Q8_K"/> activation row of <paramref name="blocks"/> super-blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(byte* w, byte* a, int blocks)
    {
        if (!Avx2.IsSupported) return DotScalar(w, a, blocks);
        bool vnni = IntegerDot.UseVnni;
        float* halves = HalfTable.Values; // the super-block scale d as one load (the conversion call was not inlined)
        var acc = Vector256<float>.Zero;
        var low4 = Vector256.Create((byte)0x0F);
        var high2 = Vector256.Create((byte)0x30);
        // vpshufb patterns over a half's eight int16 group scales (in both 128-bit lanes): quarter k takes scale 2k in
        // the low lane (its values 0–15) and 2k + 1 in the high lane (values 16–31). WHY: building each pair from two
        // scalar loads and broadcasts cost five shuffle-port operations per quarter; this is one.
        var pick0 = Vector256.Create((byte)0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
        var pick1 = Vector256.Create((byte)4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7);
        var pick2 = Vector256.Create((byte)8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11);
        var pick3 = Vector256.Create((byte)12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15);
        for (int b = 0; b < blocks; b++, w += BlockBytes, a += Q8_K.BlockBytes)
        {
            // A row is one stream with the next rows right behind it: 4 KiB ahead crosses the page boundaries where the
            // hardware prefetchers stop (as Float16.Dot).
            Sse.Prefetch1(w + PrefetchBytes); Sse.Prefetch1(w + PrefetchBytes + 64);
            Sse.Prefetch1(w + PrefetchBytes + 128); Sse.Prefetch1(w + PrefetchBytes + 192);
            sbyte* scales = (sbyte*)(w + ScalesOffset);
            // The −32 offset of every level, through the activation's group sums: 32·Σ_g scale_g·bsum_g, as eight
            // lanes of scale·bsum pairs (the lanes are summed at the end anyway).
            var offset = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Sse2.LoadVector128(scales)), Avx.LoadVector256((short*)(a + Q8_K.SumsOffset)));
            var isum = Vector256<int>.Zero;
            sbyte* qa = (sbyte*)(a + Q8_K.QuantsOffset);
            for (int half = 0; half < 2; half++, qa += 128, scales += 8)
            {
                byte* ql = w + 64 * half;
                var qh = Avx.LoadVector256(w + HighBitsOffset + 32 * half).AsUInt16();
                var ql0 = Avx.LoadVector256(ql);
                var ql1 = Avx.LoadVector256(ql + 32);
                var groupScales = Sse41.ConvertToVector128Int16(scales).AsByte();
                var both = Vector256.Create(groupScales, groupScales);
                // Quarter k: low nibbles of ql0, ql1, then high nibbles; high bits 2k..2k+1 of qh moved to bits 4..5.
                // Shifts by constants only (a variable immediate makes the JIT call a slow fallback).
                isum = Quarter(isum, ql0 & low4, Avx2.ShiftLeftLogical(qh, 4).AsByte() & high2, qa, Avx2.Shuffle(both, pick0), vnni);
                isum = Quarter(isum, ql1 & low4, Avx2.ShiftLeftLogical(qh, 2).AsByte() & high2, qa + 32, Avx2.Shuffle(both, pick1), vnni);
                isum = Quarter(isum, Avx2.ShiftRightLogical(ql0.AsUInt16(), 4).AsByte() & low4, qh.AsByte() & high2, qa + 64, Avx2.Shuffle(both, pick2), vnni);
                isum = Quarter(isum, Avx2.ShiftRightLogical(ql1.AsUInt16(), 4).AsByte() & low4, Avx2.ShiftRightLogical(qh, 2).AsByte() & high2, qa + 96, Avx2.Shuffle(both, pick3), vnni);
            }
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum - (offset << 5)),
                                  Vector256.Create(HalfTable.At(halves, w + ScaleOffset) * Q8_K.Scale(a)), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary>How far ahead of the block being read <see cref="Dot"/> prefetches its row stream.</summary>
    const int PrefetchBytes = 4096;

    /// <summary>
    /// <paramref name="isum"/> plus one quarter of a half (32 values, levels = nibbles | high bits, 0..63) times its 32
    /// activation bytes, values 0..15 weighted by the group scale in the low lane of <paramref name="scalePair"/>, values
    /// 16..31 by the one in the high lane. With AVX-VNNI the scaling and the sum are one vpdpwssd (same integers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Quarter(Vector256<int> isum, Vector256<byte> nibbles, Vector256<byte> highBits, sbyte* qa, Vector256<byte> scalePair, bool vnni)
    {
        var pairs = IntegerDot.UnsignedPairs(nibbles | highBits, Avx.LoadVector256(qa));
        return vnni ? AvxVnni.MultiplyWideningAndAdd(isum, pairs, scalePair.AsInt16()) : isum + IntegerDot.Scaled(pairs, scalePair.AsInt16());
    }

    public static float DotScalar(byte* w, byte* a, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++, w += BlockBytes, a += Q8_K.BlockBytes)
        {
            var block = new ReadOnlySpan<byte>(w, BlockBytes);
            int isum = 0;
            for (int g = 0; g < 16; g++)
            {
                int gsum = 0;
                for (int i = 0; i < 16; i++) gsum += (Level(block, 16 * g + i) - 32) * (sbyte)a[Q8_K.QuantsOffset + 16 * g + i];
                isum += (sbyte)w[ScalesOffset + g] * gsum;
            }
            sum += Q8_0.HalfAt(w + ScaleOffset) * Q8_K.Scale(a) * isum;
        }
        return sum;
    }

    /// <summary>
    /// One block as unsigned levels u[256] (0..63; value = s·(u − 32)) and per 16-value group scale s = d·scale, as
    /// <see cref="Dequantize"/> computes it: the panel form of <see cref="IntegerGemm"/>. Quarter k of each half takes
    /// its low nibble from ql (low for k &lt; 2, high otherwise) and bits 2k..2k+1 of qh as bits 4–5.
    /// </summary>
    internal static void Levels(byte* block, byte* u, float* s)
    {
        float d = Q8_0.HalfAt(block + ScaleOffset);
        for (int g = 0; g < 16; g++) s[g] = d * (sbyte)block[ScalesOffset + g];
        var low4 = Vector256.Create((byte)0x0F);
        var bits45 = Vector256.Create((byte)0x30);
        for (int half = 0; half < 2; half++)
        {
            var ql0 = Avx.LoadVector256(block + 64 * half).AsUInt16();
            var ql1 = Avx.LoadVector256(block + 64 * half + 32).AsUInt16();
            var qh = Avx.LoadVector256(block + HighBitsOffset + 32 * half).AsUInt16();
            byte* o = u + 128 * half;
            ((ql0.AsByte() & low4) | (Avx2.ShiftLeftLogical(qh, 4).AsByte() & bits45)).Store(o);
            ((ql1.AsByte() & low4) | (Avx2.ShiftLeftLogical(qh, 2).AsByte() & bits45)).Store(o + 32);
            ((Avx2.ShiftRightLogical(ql0, 4).AsByte() & low4) | (qh.AsByte() & bits45)).Store(o + 64);
            ((Avx2.ShiftRightLogical(ql1, 4).AsByte() & low4) | (Avx2.ShiftRightLogical(qh, 2).AsByte() & bits45)).Store(o + 96);
        }
    }

    static int Blocks(int elements, int bytes)
    {
        if (elements % BlockElements != 0) throw new ArgumentException($"q6_K rows are whole blocks of {BlockElements}, got {elements} values");
        int blocks = elements / BlockElements;
        if (bytes < blocks * BlockBytes) throw new ArgumentException($"{blocks} q6_K blocks need {blocks * BlockBytes} bytes, got {bytes}");
        return blocks;
    }
}
