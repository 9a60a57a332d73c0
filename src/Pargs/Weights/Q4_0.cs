using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// ggml's Q4_0 (block_q4_0): blocks of 32 values as an f16 scale d and 16 bytes of 4-bit q (element j in the
/// low nibble of byte j, element j + 16 in its high nibble), value = d·(q − 8). Its products take the
/// activation row in <see cref="Q8_0"/>.
/// </summary>
public static unsafe class Q4_0
{
    public const int BlockElements = 32;
    public const int BlockBytes = 2 + BlockElements / 2;

    /// <summary>
    /// quantize_row_q4_0_ref: d = m/−8 where m is the value of largest magnitude (so m itself maps to level 0,
    /// −8·d), q = min(15, trunc(x/d + 8.5)).
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> y)
    {
        int blocks = Blocks(x.Length, y.Length);
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockElements, BlockElements);
            var yb = y.Slice(b * BlockBytes, BlockBytes);
            float amax = 0, max = 0;
            foreach (float v in xb)
                if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
            float d = max / -8;
            float id = d != 0 ? 1f / d : 0f;
            Q8_0.WriteHalf(yb, Float16.FromFloat(d));
            for (int j = 0; j < BlockElements / 2; j++)
            {
                int lo = Math.Min(15, (int)KQuantSearch.CInt8(xb[j] * id + 8.5f));
                int hi = Math.Min(15, (int)KQuantSearch.CInt8(xb[j + 16] * id + 8.5f));
                yb[2 + j] = (byte)(lo | hi << 4);
            }
        }
    }

    /// <summary>dequantize_row_q4_0.</summary>
    public static void Dequantize(ReadOnlySpan<byte> x, Span<float> y)
    {
        int blocks = Blocks(y.Length, x.Length);
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockBytes, BlockBytes);
            float d = Float16.ToFloat(Q8_0.ReadHalf(xb));
            for (int j = 0; j < BlockElements / 2; j++)
            {
                y[b * BlockElements + j] = ((xb[2 + j] & 0x0F) - 8) * d;
                y[b * BlockElements + j + 16] = ((xb[2 + j] >> 4) - 8) * d;
            }
        }
    }

    /// <summary>
    /// A Q4_0 weight row times a <see cref="Q8_0"/> activation row of <paramref name="blocks"/> blocks: four blocks per
    /// iteration into four accumulators, scales read from <see cref="HalfTable"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(byte* w, byte* a, int blocks)
    {
        if (!Avx2.IsSupported) return DotScalar(w, a, blocks);
        bool vnni = IntegerDot.UseVnni;
        float* half = HalfTable.Values;
        var acc0 = Vector256<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, w += 4 * BlockBytes, a += 4 * Q8_0.BlockBytes)
        {
            acc0 = Block(w, a, half, vnni, acc0);
            acc1 = Block(w + BlockBytes, a + Q8_0.BlockBytes, half, vnni, acc1);
            acc2 = Block(w + 2 * BlockBytes, a + 2 * Q8_0.BlockBytes, half, vnni, acc2);
            acc3 = Block(w + 3 * BlockBytes, a + 3 * Q8_0.BlockBytes, half, vnni, acc3);
        }
        for (; b < blocks; b++, w += BlockBytes, a += Q8_0.BlockBytes) acc0 = Block(w, a, half, vnni, acc0);
        return Vector256.Sum((acc0 + acc1) + (acc2 + acc3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Block(byte* w, byte* a, float* half, bool vnni, Vector256<float> acc)
        => Fma.MultiplyAdd(Avx.ConvertToVector256Single(BlockDot(w, a, vnni)), Vector256.Create(HalfTable.At(half, w) * HalfTable.At(half, a)), acc);

    /// <summary>One block: the 32 nibbles as bytes in element order (low nibbles, then high), less 8, times a's bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> BlockDot(byte* w, byte* a, bool vnni)
    {
        var packed = Sse2.LoadVector128(w + 2);
        var nibbles = Vector256.Create(packed, Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte()) & Vector256.Create((byte)0x0F);
        var q = Avx2.Subtract(nibbles, Vector256.Create((byte)8)).AsSByte();
        return IntegerDot.Signed(q, Avx.LoadVector256((sbyte*)(a + 2)), vnni);
    }

    public static float DotScalar(byte* w, byte* a, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++, w += BlockBytes, a += Q8_0.BlockBytes)
        {
            int isum = 0;
            for (int j = 0; j < 16; j++)
                isum += ((w[2 + j] & 0x0F) - 8) * (sbyte)a[2 + j] + ((w[2 + j] >> 4) - 8) * (sbyte)a[2 + j + 16];
            sum += Q8_0.HalfAt(w) * Q8_0.HalfAt(a) * isum;
        }
        return sum;
    }

    static int Blocks(int elements, int bytes)
    {
        if (elements % BlockElements != 0) throw new ArgumentException($"q4_0 rows are whole blocks of {BlockElements}, got {elements} values");
        int blocks = elements / BlockElements;
        if (bytes < blocks * BlockBytes) throw new ArgumentException($"{blocks} q4_0 blocks need {blocks * BlockBytes} bytes, got {bytes}");
        return blocks;
    }
}
