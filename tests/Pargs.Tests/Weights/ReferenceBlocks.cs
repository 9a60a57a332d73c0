namespace Pargs.Tests.Weights;

/// <summary>
/// Dequantizers written for the tests from the formats' definitions (ggml's block structs and their comments),
/// one value at a time, with .NET's own half conversion: a second implementation to hold the library's
/// block-at-a-time code against. Float operations happen in the order the definitions state them.
/// </summary>
public static class ReferenceBlocks
{
    static float Half(ReadOnlySpan<byte> b, int at) => (float)BitConverter.UInt16BitsToHalf((ushort)(b[at] | b[at + 1] << 8));

    /// <summary>Q8_0: [d: f16][q: int8 × 32]; value i = q[i]·d.</summary>
    public static float Q8_0(ReadOnlySpan<byte> block, int i) => (sbyte)block[2 + i] * Half(block, 0);

    /// <summary>Q4_0: [d: f16][16 bytes]; value i &lt; 16 is the low nibble of byte i, value i ≥ 16 the high nibble of byte i − 16; (q − 8)·d.</summary>
    public static float Q4_0(ReadOnlySpan<byte> block, int i)
    {
        int q = i < 16 ? block[2 + i] & 15 : block[2 + i - 16] >> 4;
        return (q - 8) * Half(block, 0);
    }

    /// <summary>The 6-bit scale and min of sub-block s (0..7) from K-quant scale bytes: s &lt; 4 in the low 6 bits of bytes s and s+4; s ≥ 4 split between the nibbles of byte s+4 and the top 2 bits of bytes s−4 and s.</summary>
    static (int Scale, int Min) SixBit(ReadOnlySpan<byte> scales, int s)
        => s < 4
            ? (scales[s] & 0x3F, scales[s + 4] & 0x3F)
            : ((scales[s + 4] & 0x0F) + 16 * (scales[s - 4] >> 6), (scales[s + 4] >> 4) + 16 * (scales[s] >> 6));

    /// <summary>Q4_K: [d][dmin][scales: 12][qs: 128]; value i is in sub-block i/32; its nibble is in byte 32·(i/64) + i%32, low for the first 32 of each 64.</summary>
    public static float Q4_K(ReadOnlySpan<byte> block, int i)
    {
        var (scale, min) = SixBit(block.Slice(4, 12), i / 32);
        byte packed = block[16 + 32 * (i / 64) + i % 32];
        int q = i % 64 < 32 ? packed & 15 : packed >> 4;
        return Half(block, 0) * scale * q - Half(block, 2) * min;
    }

    /// <summary>Q5_K: [d][dmin][scales: 12][qh: 32][qs: 128]; Q4_K's nibble plus 16 if bit (i/32) of qh[i%32] is set.</summary>
    public static float Q5_K(ReadOnlySpan<byte> block, int i)
    {
        var (scale, min) = SixBit(block.Slice(4, 12), i / 32);
        byte packed = block[48 + 32 * (i / 64) + i % 32];
        int q = (i % 64 < 32 ? packed & 15 : packed >> 4) + ((block[16 + i % 32] >> (i / 32)) & 1) * 16;
        return Half(block, 0) * scale * q - Half(block, 2) * min;
    }

    /// <summary>
    /// Q6_K: [ql: 128][qh: 64][scales: int8 × 16][d]. Value i: half h = i/128, quarter k = (i%128)/32, l = i%32;
    /// low 4 bits from ql[64h + l + 32·(k%2)] (low nibble for k &lt; 2), high 2 bits are bits 2k, 2k+1 of
    /// qh[32h + l]; value = d·scales[i/16]·(q − 32).
    /// </summary>
    public static float Q6_K(ReadOnlySpan<byte> block, int i)
    {
        int h = i / 128, k = i % 128 / 32, l = i % 32;
        byte lowByte = block[64 * h + l + 32 * (k % 2)];
        int low = k < 2 ? lowByte & 15 : lowByte >> 4;
        int high = (block[128 + 32 * h + l] >> (2 * k)) & 3;
        return Half(block, 208) * (sbyte)block[192 + i / 16] * (low + 16 * high - 32);
    }

    /// <summary>Q8_K: [d: float32][q: int8 × 256][bsums: int16 × 16]; value i = d·q[i].</summary>
    public static float Q8_K(ReadOnlySpan<byte> block, int i) => BitConverter.ToSingle(block[..4]) * (sbyte)block[4 + i];
}
