using Pargs.Weights;

namespace Pargs.Tests.Weights;

/// <summary>
/// Dequantization against <see cref="ReferenceBlocks"/> on random block bytes with edge scales, and the
/// quantize → dequantize error of each format on random rows against the bound its construction gives.
/// </summary>
public class BlockFormatTests
{
    public static TheoryData<WeightFormat> BlockFormats => new() { WeightFormat.Q8_0, WeightFormat.Q4_0, WeightFormat.Q4_K, WeightFormat.Q5_K, WeightFormat.Q6_K, WeightFormat.Q8_K };

    static Func<byte[], int, float> Reference(WeightFormat format) => format switch
    {
        WeightFormat.Q8_0 => (b, i) => ReferenceBlocks.Q8_0(b, i),
        WeightFormat.Q4_0 => (b, i) => ReferenceBlocks.Q4_0(b, i),
        WeightFormat.Q4_K => (b, i) => ReferenceBlocks.Q4_K(b, i),
        WeightFormat.Q5_K => (b, i) => ReferenceBlocks.Q5_K(b, i),
        WeightFormat.Q6_K => (b, i) => ReferenceBlocks.Q6_K(b, i),
        WeightFormat.Q8_K => (b, i) => ReferenceBlocks.Q8_K(b, i),
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    /// <summary>f16 scales worth testing: zero, negative zero, the largest finite, the smallest and largest subnormals, ordinary values.</summary>
    static readonly ushort[] EdgeHalves = { 0x0000, 0x8000, 0x7BFF, 0xFBFF, 0x0001, 0x03FF, 0x3C00, 0x2E66, 0xB400 };

    /// <summary>Where a block keeps its f16 scales (d, and dmin for Q4_K/Q5_K).</summary>
    static int[] HalfOffsets(WeightFormat format) => format switch
    {
        WeightFormat.Q8_0 or WeightFormat.Q4_0 => new[] { 0 },
        WeightFormat.Q4_K or WeightFormat.Q5_K => new[] { 0, 2 },
        WeightFormat.Q6_K => new[] { 208 },
        _ => Array.Empty<int>(),
    };

    [Theory]
    [MemberData(nameof(BlockFormats))]
    public void Dequantize_matches_the_written_definition_on_random_blocks_and_edge_scales(WeightFormat format)
    {
        var random = new Random((int)format);
        int blockBytes = WeightFormats.BlockBytes(format), blockElements = WeightFormats.BlockElements(format);
        const int blocks = 64;
        var stored = new byte[blocks * blockBytes];
        random.NextBytes(stored);
        for (int b = 0; b < blocks; b++)
        {
            var block = stored.AsSpan(b * blockBytes, blockBytes);
            foreach (int at in HalfOffsets(format))
            {
                // Finite halves only (random bits would include inf/NaN scales); every edge value appears.
                ushort h = b < EdgeHalves.Length ? EdgeHalves[(b + at) % EdgeHalves.Length] : (ushort)(random.Next(0, 0x7C00) | (random.Next(2) << 15));
                block[at] = (byte)h;
                block[at + 1] = (byte)(h >> 8);
            }
            if (format == WeightFormat.Q8_K) BitConverter.TryWriteBytes(block, b == 0 ? -0f : b == 1 ? float.Epsilon : (float)(random.NextDouble() - 0.5));
            if (b == blocks - 1) block.Clear(); // an all-zero block
        }
        var got = new float[blocks * blockElements];
        WeightCodec.Decode(format, stored, got);
        var reference = Reference(format);
        for (int b = 0; b < blocks; b++)
        {
            var block = stored.AsSpan(b * blockBytes, blockBytes).ToArray();
            for (int i = 0; i < blockElements; i++)
            {
                float want = reference(block, i), value = got[b * blockElements + i];
                Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(value),
                    $"{format} block {b} value {i}: definition {want:R}, ours {value:R}");
            }
        }
    }

    [Fact]
    public void Half_formats_convert_edge_values_as_ggml_does()
    {
        Assert.Equal(0x8000, Float16.FromFloat(-0f));
        Assert.Equal(-0f, Float16.ToFloat(0x8000));
        Assert.True(BitConverter.SingleToInt32Bits(Float16.ToFloat(0x8000)) < 0);
        Assert.Equal(5.9604645e-8f, Float16.ToFloat(0x0001));                 // smallest subnormal half, 2^-24
        Assert.Equal(6.097555e-5f, Float16.ToFloat(0x03FF));                  // largest subnormal half
        Assert.Equal(65504f, Float16.ToFloat(0x7BFF));
        Assert.Equal(float.PositiveInfinity, Float16.ToFloat(0x7C00));
        Assert.True(float.IsNaN(Float16.ToFloat(0x7E00)));
        Assert.Equal(0x7C00, Float16.FromFloat(65520f));                       // rounds up past the largest finite half
        Assert.Equal(0x7BFF, Float16.FromFloat(65519f));
        Assert.Equal(0x7E00, Float16.FromFloat(float.NaN) & 0x7FFF);
        Assert.Equal(0x0000, Float16.FromFloat(2.9802322e-8f));                // 2^-25: a tie, to even (zero)

        Assert.Equal(0x7F80, BFloat16.FromFloat(float.PositiveInfinity));
        Assert.Equal(0xFF80, BFloat16.FromFloat(float.NegativeInfinity));
        Assert.Equal(0x7FC0, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x7F800001))); // signalling NaN: quieted
        Assert.Equal(0x7F80, BFloat16.FromFloat(float.MaxValue));             // rounds up to inf, as ggml does
        Assert.Equal(0x0001, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x00010000))); // subnormals are kept
        Assert.Equal(0x3F80, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie to even
        Assert.Equal(0x3F82, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie to even (up)
        Assert.True(float.IsNaN(BFloat16.ToFloat(0x7FC1)));
    }

    /// <summary>
    /// The largest quantize → dequantize error of each format on rows of normal values, relative to the largest
    /// |x| of its block (Q8_0, Q4_0, Q8_K: the bound that format's rounding gives) or as an RMS relative to the
    /// row's RMS (the K-quants, whose scales come from a search: bounds a little above their known accuracy).
    /// </summary>
    [Theory]
    [InlineData(WeightFormat.F16, 1.0 / 2048, 0)]
    [InlineData(WeightFormat.BF16, 1.0 / 256, 0)]
    [InlineData(WeightFormat.Q8_0, 0.5 / 127 * 1.13, 0)]   // half a step; the f16 scale adds at most 127·2^-11 steps
    [InlineData(WeightFormat.Q4_0, 1.0 / 8 * 1.01, 0)]     // one step: the largest |x| maps to −8, the other side clamps at +7
    [InlineData(WeightFormat.Q8_K, 0.5 / 127 * 1.001, 0)]  // half a step of a float32 scale
    [InlineData(WeightFormat.Q4_K, 0, 0.12)]
    [InlineData(WeightFormat.Q5_K, 0, 0.06)]
    [InlineData(WeightFormat.Q6_K, 0, 0.03)]
    public void Quantize_then_dequantize_stays_within_the_formats_error(WeightFormat format, double maxPerBlock, double maxRms)
    {
        var random = new Random(11);
        const int cols = 1024, rows = 8;
        var x = new float[rows * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(Normal(random) * (i / cols + 1) * 0.05);
        var stored = new byte[WeightFormats.ByteCount(format, x.Length, "test")];
        WeightCodec.Encode(format, x, stored);
        var back = new float[x.Length];
        WeightCodec.Decode(format, stored, back);
        if (maxPerBlock > 0)
        {
            int block = format is WeightFormat.F16 or WeightFormat.BF16 ? 1 : WeightFormats.BlockElements(format);
            double worst = 0;
            for (int b = 0; b < x.Length; b += block)
            {
                double amax = x.Skip(b).Take(block).Max(v => Math.Abs(v));
                for (int i = b; i < b + block; i++) worst = Math.Max(worst, Math.Abs(x[i] - back[i]) / amax);
            }
            Assert.True(worst <= maxPerBlock, $"{format}: worst error {worst:E3} of the block's largest |x|, bound {maxPerBlock:E3}");
        }
        else
        {
            double error = Math.Sqrt(x.Zip(back, (a, b) => (double)(a - b) * (a - b)).Average());
            double rms = Math.Sqrt(x.Average(v => (double)v * v));
            Assert.True(error / rms <= maxRms, $"{format}: RMS error {error / rms:F4} of the row's RMS, bound {maxRms}");
            Assert.True(error / rms > maxRms / 20, $"{format}: RMS error {error / rms:F4} is implausibly small for the format");
        }
    }

    [Fact]
    public void Zero_blocks_quantize_to_zeros_in_every_format()
    {
        foreach (var format in new[] { WeightFormat.Q8_0, WeightFormat.Q4_0, WeightFormat.Q4_K, WeightFormat.Q5_K, WeightFormat.Q6_K, WeightFormat.Q8_K })
        {
            var x = new float[512];
            var stored = new byte[WeightFormats.ByteCount(format, x.Length, "test")];
            WeightCodec.Encode(format, x, stored);
            var back = Enumerable.Repeat(float.NaN, 512).ToArray();
            WeightCodec.Decode(format, stored, back);
            Assert.All(back, v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void Shapes_that_are_not_whole_blocks_and_unknown_types_are_errors_naming_the_tensor()
    {
        var e = Assert.Throws<PargsException>(() => WeightFormats.ByteCount(WeightFormat.Q4_K, 300, "tensor \"blk.0.ffn_up.weight\""));
        Assert.Contains("blk.0.ffn_up.weight", e.Message);
        e = Assert.Throws<PargsException>(() => WeightFormats.FromGgml(Pargs.Checkpoints.GgmlType.Q2_K, "blk.3.attn_q.weight"));
        Assert.Contains("blk.3.attn_q.weight", e.Message);
        Assert.Equal(WeightFormat.Q6_K, WeightFormats.FromGgml(Pargs.Checkpoints.GgmlType.Q6_K, "output.weight"));
    }

    internal static double Normal(Random random)
        => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
