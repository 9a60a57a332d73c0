using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// ggml's Q8_0 (block_q8_0): blocks of 32 values as an f16 scale d and 32 signed bytes q, value = d·q. Used
/// for weights and as the activation format of Q8_0 and Q4_0 products.
/// </summary>
public static unsafe class Q8_0
{
    public const int BlockElements = 32;
    public const int BlockBytes = 2 + BlockElements;

    /// <summary>quantize_row_q8_0_ref: d = max|x|/127, q = round(x/d) (halves away from zero).</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> y)
    {
        int blocks = Blocks(x.Length, y.Length);
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockElements, BlockElements);
            var yb = y.Slice(b * BlockBytes, BlockBytes);
            float amax = 0;
            foreach (float v in xb) amax = amax > MathF.Abs(v) ? amax : MathF.Abs(v);
            float d = amax / 127;
            float id = d != 0 ? 1f / d : 0f;
            WriteHalf(yb, Float16.FromFloat(d));
            for (int j = 0; j < BlockElements; j++)
                yb[2 + j] = (byte)KQuantSearch.CInt8(MathF.Round(xb[j] * id, MidpointRounding.AwayFromZero));
        }
    }

    /// <summary>
    /// <see cref="Quantize"/> vectorized, bit for bit (tested): the activation row of every Q8_0 / Q4_0 product, quantized
    /// once per product. Round half away from zero as trunc(v) ± 1 where |v − trunc(v)| ≥ 0.5 (the difference is exact
    /// in float). A block holding NaN or ±inf, or so small that 1/d overflows, takes the scalar reference, whose comparisons decide what such a block
    /// becomes. WHY: the scalar loop cost ~10 ns per value, a few percent of a decoding step.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeRow(float* x, byte* y, int blocks)
    {
        if (!Avx2.IsSupported)
        {
            Quantize(new ReadOnlySpan<float>(x, blocks * BlockElements), new Span<byte>(y, blocks * BlockBytes));
            return;
        }
        var half = Vector256.Create(0.5f);
        var one = Vector256.Create(1f);
        var order = Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7);
        for (int b = 0; b < blocks; b++, x += BlockElements, y += BlockBytes)
        {
            var v0 = Avx.LoadVector256(x); var v1 = Avx.LoadVector256(x + 8); var v2 = Avx.LoadVector256(x + 16); var v3 = Avx.LoadVector256(x + 24);
            var zero = Vector256<float>.Zero;
            // x − x is 0 for finite x, NaN for NaN and ±inf.
            var finite = Vector256.Equals(v0 - v0, zero) & Vector256.Equals(v1 - v1, zero) & Vector256.Equals(v2 - v2, zero) & Vector256.Equals(v3 - v3, zero);
            if (finite.ExtractMostSignificantBits() != 0xFF)
            {
                Quantize(new ReadOnlySpan<float>(x, BlockElements), new Span<byte>(y, BlockBytes));
                continue;
            }
            var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
            var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
            float amax = MathF.Max(MathF.Max(m4.GetElement(0), m4.GetElement(1)), MathF.Max(m4.GetElement(2), m4.GetElement(3)));
            float d = amax / 127;
            float id = d != 0 ? 1f / d : 0f;
            if (!float.IsFinite(id))
            {
                // A subnormal d overflows 1/d: the reference's casts of ±inf and NaN decide those bytes.
                Quantize(new ReadOnlySpan<float>(x, BlockElements), new Span<byte>(y, BlockBytes));
                continue;
            }
            Unsafe.WriteUnaligned(y, Float16.FromFloat(d));
            var scale = Vector256.Create(id);
            var i0 = Avx.ConvertToVector256Int32WithTruncation(RoundAway(v0 * scale, half, one));
            var i1 = Avx.ConvertToVector256Int32WithTruncation(RoundAway(v1 * scale, half, one));
            var i2 = Avx.ConvertToVector256Int32WithTruncation(RoundAway(v2 * scale, half, one));
            var i3 = Avx.ConvertToVector256Int32WithTruncation(RoundAway(v3 * scale, half, one));
            // int32 → int16 → int8 packs interleave the 128-bit lanes; one permute puts the 32 bytes back in order.
            var bytes = Avx2.PackSignedSaturate(Avx2.PackSignedSaturate(i0, i1), Avx2.PackSignedSaturate(i2, i3));
            Avx2.PermuteVar8x32(bytes.AsInt32(), order).AsByte().Store(y + 2);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> RoundAway(Vector256<float> v, Vector256<float> half, Vector256<float> one)
    {
        var t = Avx.RoundToZero(v);
        var up = Vector256.GreaterThanOrEqual(Vector256.Abs(v - t), half);
        return t + (up & Vector256.CopySign(one, v));
    }

    /// <summary>dequantize_row_q8_0.</summary>
    public static void Dequantize(ReadOnlySpan<byte> x, Span<float> y)
    {
        int blocks = Blocks(y.Length, x.Length);
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockBytes, BlockBytes);
            float d = Float16.ToFloat(ReadHalf(xb));
            for (int j = 0; j < BlockElements; j++) y[b * BlockElements + j] = (sbyte)xb[2 + j] * d;
        }
    }

    /// <summary>
    /// Σ over <paramref name="blocks"/> blocks of d_w·d_a·Σ q_w·q_a: a Q8_0 weight row times a Q8_0 activation row.
    /// Four blocks per iteration into four accumulators (independent FMA chains), scales read from
    /// <see cref="HalfTable"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(byte* w, byte* a, int blocks)
    {
        if (!Avx2.IsSupported) return DotScalar(w, a, blocks);
        bool vnni = IntegerDot.UseVnni;
        float* half = HalfTable.Values;
        var acc0 = Vector256<float>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
        int b = 0;
        for (; b + 4 <= blocks; b += 4, w += 4 * BlockBytes, a += 4 * BlockBytes)
        {
            acc0 = Block(w, a, half, vnni, acc0);
            acc1 = Block(w + BlockBytes, a + BlockBytes, half, vnni, acc1);
            acc2 = Block(w + 2 * BlockBytes, a + 2 * BlockBytes, half, vnni, acc2);
            acc3 = Block(w + 3 * BlockBytes, a + 3 * BlockBytes, half, vnni, acc3);
        }
        for (; b < blocks; b++, w += BlockBytes, a += BlockBytes) acc0 = Block(w, a, half, vnni, acc0);
        return Vector256.Sum((acc0 + acc1) + (acc2 + acc3));
    }

    /// <summary>acc + d_w·d_a·(the eight lane sums of one block's byte products).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Block(byte* w, byte* a, float* half, bool vnni, Vector256<float> acc)
        => Fma.MultiplyAdd(Avx.ConvertToVector256Single(IntegerDot.Signed(Avx.LoadVector256((sbyte*)(w + 2)), Avx.LoadVector256((sbyte*)(a + 2)), vnni)),
                           Vector256.Create(HalfTable.At(half, w) * HalfTable.At(half, a)), acc);

    /// <summary><see cref="Dot"/> without SIMD: the fallback, and the tests' second implementation.</summary>
    public static float DotScalar(byte* w, byte* a, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++, w += BlockBytes, a += BlockBytes)
        {
            int isum = 0;
            for (int j = 0; j < BlockElements; j++) isum += (sbyte)w[2 + j] * (sbyte)a[2 + j];
            sum += HalfAt(w) * HalfAt(a) * isum;
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float HalfAt(byte* p) => Float16.ToFloat(Unsafe.ReadUnaligned<ushort>(p));

    internal static ushort ReadHalf(ReadOnlySpan<byte> p) => (ushort)(p[0] | p[1] << 8);

    internal static void WriteHalf(Span<byte> p, ushort h)
    {
        p[0] = (byte)h;
        p[1] = (byte)(h >> 8);
    }

    /// <summary>Whole blocks in <paramref name="elements"/>, checking that <paramref name="bytes"/> hold them.</summary>
    static int Blocks(int elements, int bytes)
    {
        if (elements % BlockElements != 0) throw new ArgumentException($"q8_0 rows are whole blocks of {BlockElements}, got {elements} values");
        int blocks = elements / BlockElements;
        if (bytes < blocks * BlockBytes) throw new ArgumentException($"{blocks} q8_0 blocks need {blocks * BlockBytes} bytes, got {bytes}");
        return blocks;
    }
}
