using System.Runtime.CompilerServices;

namespace Pargs.Weights;

/// <summary>
/// ggml's Q8_K (block_q8_K): the activation format of K-quant products. 256 values as a float32 scale d, 256
/// signed bytes q (value = d·q) and the sums of q over each 16 values (bsums), which the products use for
/// their min and offset terms without touching the bytes again.
/// </summary>
public static unsafe class Q8_K
{
    public const int BlockElements = WeightFormats.SuperBlock;
    public const int BlockBytes = 4 + BlockElements + 2 * (BlockElements / 16);
    /// <summary>Byte offsets inside a block.</summary>
    public const int QuantsOffset = 4, SumsOffset = 4 + BlockElements;

    /// <summary>
    /// quantize_row_q8_K_ref: with m the value of largest magnitude, q = min(127, round(−127·x/m)) (ties to even)
    /// and d = 1/(−127/m). An all-zero block has d = 0 and zero sums (ggml leaves its sums unwritten).
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> y)
    {
        int blocks = Blocks(x.Length, y.Length);
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockElements, BlockElements);
            var yb = y.Slice(b * BlockBytes, BlockBytes);
            float max = 0, amax = 0;
            foreach (float v in xb)
                if (MathF.Abs(v) > amax) { amax = MathF.Abs(v); max = v; }
            if (amax == 0)
            {
                yb.Clear();
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < BlockElements; j++)
                yb[QuantsOffset + j] = (byte)(sbyte)Math.Min(127, KQuantSearch.NearestInt(iscale * xb[j]));
            for (int g = 0; g < BlockElements / 16; g++)
            {
                int sum = 0;
                for (int i = 0; i < 16; i++) sum += (sbyte)yb[QuantsOffset + g * 16 + i];
                Unsafe.WriteUnaligned(ref yb[SumsOffset + 2 * g], (short)sum);
            }
            Unsafe.WriteUnaligned(ref yb[0], 1 / iscale);
        }
    }

    /// <summary>dequantize_row_q8_K.</summary>
    public static void Dequantize(ReadOnlySpan<byte> x, Span<float> y)
    {
        int blocks = Blocks(y.Length, x.Length);
        for (int b = 0; b < blocks; b++)
        {
            var xb = x.Slice(b * BlockBytes, BlockBytes);
            float d = Unsafe.ReadUnaligned<float>(ref Unsafe.AsRef(in xb[0]));
            for (int j = 0; j < BlockElements; j++) y[b * BlockElements + j] = d * (sbyte)xb[QuantsOffset + j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Scale(byte* block) => Unsafe.ReadUnaligned<float>(block);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static short Sum16(byte* block, int group) => Unsafe.ReadUnaligned<short>(block + SumsOffset + 2 * group);

    internal static int Blocks(int elements, int bytes)
    {
        if (elements % BlockElements != 0) throw new ArgumentException($"q8_K rows are whole blocks of {BlockElements}, got {elements} values");
        int blocks = elements / BlockElements;
        if (bytes < blocks * BlockBytes) throw new ArgumentException($"{blocks} q8_K blocks need {blocks * BlockBytes} bytes, got {bytes}");
        return blocks;
    }
}
