using Pargs.Weights;

namespace Pargs.Tests.Weights;

/// <summary>
/// Bit-exact agreement with llama.cpp's ggml (Golden/ggml-quants.bin, tools/ggml-golden): our quantizers write
/// the bytes llama.cpp's reference quantizers write, and we read its bytes back to the same floats — so our
/// files are llama.cpp's files and its files are ours. The inputs cover zero, constant, one-sided, outlier,
/// tie, tiny and near-f16-maximum blocks.
/// </summary>
public class GgmlGoldenTests
{
    [Theory]
    [InlineData(WeightFormat.Q8_0)]
    [InlineData(WeightFormat.Q4_0)]
    [InlineData(WeightFormat.Q4_K)]
    [InlineData(WeightFormat.Q5_K)]
    [InlineData(WeightFormat.Q6_K)]
    [InlineData(WeightFormat.Q8_K)]
    public void Quantizer_writes_llama_cpp_reference_bytes(WeightFormat format)
    {
        var input = GgmlGolden.Floats("input");
        var want = GgmlGolden.Bytes($"{WeightFormats.Name(format)}.quant");
        var got = new byte[WeightFormats.ByteCount(format, input.Length, "golden")];
        WeightCodec.Encode(format, input, got);
        Assert.Equal(want.Length, got.Length);
        int blockBytes = WeightFormats.BlockBytes(format), blockElements = WeightFormats.BlockElements(format);
        for (int i = 0; i < want.Length; i++)
            if (want[i] != got[i])
                Assert.Fail($"{format}: first difference at byte {i % blockBytes} of block {i / blockBytes} (input values {i / blockBytes * blockElements}..): ggml {want[i]:X2}, ours {got[i]:X2}");
    }

    [Theory]
    [InlineData(WeightFormat.Q8_0)]
    [InlineData(WeightFormat.Q4_0)]
    [InlineData(WeightFormat.Q4_K)]
    [InlineData(WeightFormat.Q5_K)]
    [InlineData(WeightFormat.Q6_K)]
    [InlineData(WeightFormat.Q8_K)]
    public void Dequantizer_reads_llama_cpp_bytes_to_the_same_floats(WeightFormat format)
    {
        var stored = GgmlGolden.Bytes($"{WeightFormats.Name(format)}.quant");
        var want = GgmlGolden.Floats($"{WeightFormats.Name(format)}.dequant");
        var got = new float[want.Length];
        WeightCodec.Decode(format, stored, got);
        for (int i = 0; i < want.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]),
                $"{format}: value {i}: ggml {want[i]:R}, ours {got[i]:R}");
    }

    [Fact]
    public void F16_conversions_match_ggml_for_every_half_and_special_floats()
    {
        var all = GgmlGolden.Floats("f16.all");
        for (int h = 0; h < 65536; h++)
        {
            float want = all[h], got = Float16.ToFloat((ushort)h);
            // ggml's software conversion quiets a signalling NaN; NaN payloads are not part of the format's meaning.
            if (float.IsNaN(want)) Assert.True(float.IsNaN(got), $"half {h:X4}");
            else Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got), $"half {h:X4}: ggml {want:R}, ours {got:R}");
        }
        // The vector conversion (rows, dot products) against the same table.
        var rowResult = new float[65536];
        Float16.ToFloats(Enumerable.Range(0, 65536).Select(h => (ushort)h).ToArray(), rowResult);
        for (int h = 0; h < 65536; h++)
            if (float.IsNaN(all[h])) Assert.True(float.IsNaN(rowResult[h]), $"half {h:X4} (vector)");
            else Assert.True(BitConverter.SingleToInt32Bits(all[h]) == BitConverter.SingleToInt32Bits(rowResult[h]), $"half {h:X4} (vector): ggml {all[h]:R}, ours {rowResult[h]:R}");
        var from = GgmlGolden.Floats("f16.from");
        var to = GgmlGolden.UInt16s("f16.to");
        for (int i = 0; i < from.Length; i++)
            Assert.True(to[i] == Float16.FromFloat(from[i]), $"float {BitConverter.SingleToUInt32Bits(from[i]):X8} ({from[i]:R}): ggml {to[i]:X4}, ours {Float16.FromFloat(from[i]):X4}");
    }

    [Fact]
    public void BF16_conversion_matches_ggml_including_nan_inf_and_subnormals()
    {
        var from = GgmlGolden.Floats("bf16.from");
        var to = GgmlGolden.UInt16s("bf16.to");
        for (int i = 0; i < from.Length; i++)
            Assert.True(to[i] == BFloat16.FromFloat(from[i]), $"float {BitConverter.SingleToUInt32Bits(from[i]):X8} ({from[i]:R}): ggml {to[i]:X4}, ours {BFloat16.FromFloat(from[i]):X4}");
    }
}
