namespace Pargs.Weights;

/// <summary>One row of values to and from any <see cref="WeightFormat"/>, with ggml's reference conversions.</summary>
public static class WeightCodec
{
    /// <summary>Writes <paramref name="values"/> (a whole number of blocks) into <paramref name="stored"/>.</summary>
    public static void Encode(WeightFormat format, ReadOnlySpan<float> values, Span<byte> stored)
    {
        switch (format)
        {
            case WeightFormat.F32: System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).CopyTo(stored); break;
            case WeightFormat.F16: Float16.FromFloats(values, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(stored)); break;
            case WeightFormat.BF16: BFloat16.FromFloats(values, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(stored)); break;
            case WeightFormat.Q8_0: Q8_0.Quantize(values, stored); break;
            case WeightFormat.Q4_0: Q4_0.Quantize(values, stored); break;
            case WeightFormat.Q4_K: Q4_K.Quantize(values, stored); break;
            case WeightFormat.Q5_K: Q5_K.Quantize(values, stored); break;
            case WeightFormat.Q6_K: Q6_K.Quantize(values, stored); break;
            case WeightFormat.Q8_K: Q8_K.Quantize(values, stored); break;
            default: throw new ArgumentOutOfRangeException(nameof(format), format, null);
        }
    }

    /// <summary>Reads <paramref name="values"/>.Length values out of <paramref name="stored"/>.</summary>
    public static void Decode(WeightFormat format, ReadOnlySpan<byte> stored, Span<float> values)
    {
        switch (format)
        {
            case WeightFormat.F32: System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(stored)[..values.Length].CopyTo(values); break;
            case WeightFormat.F16: Float16.ToFloats(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(stored)[..values.Length], values); break;
            case WeightFormat.BF16: BFloat16.ToFloats(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(stored)[..values.Length], values); break;
            case WeightFormat.Q8_0: Q8_0.Dequantize(stored, values); break;
            case WeightFormat.Q4_0: Q4_0.Dequantize(stored, values); break;
            case WeightFormat.Q4_K: Q4_K.Dequantize(stored, values); break;
            case WeightFormat.Q5_K: Q5_K.Dequantize(stored, values); break;
            case WeightFormat.Q6_K: Q6_K.Dequantize(stored, values); break;
            case WeightFormat.Q8_K: Q8_K.Dequantize(stored, values); break;
            default: throw new ArgumentOutOfRangeException(nameof(format), format, null);
        }
    }

    /// <summary>The format the activation row is quantized to for a product with <paramref name="weights"/> (null: stays float32).</summary>
    public static WeightFormat? ActivationFormat(WeightFormat weights) => weights switch
    {
        WeightFormat.Q8_0 or WeightFormat.Q4_0 => WeightFormat.Q8_0,
        WeightFormat.Q4_K or WeightFormat.Q5_K or WeightFormat.Q6_K => WeightFormat.Q8_K,
        _ => null,
    };
}
