using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// IEEE half precision (ggml's F16, safetensors' F16) as raw 16-bit patterns, converted the way ggml converts
/// them: half → float is exact (subnormals, ±0, ±inf and NaN payloads kept); float → half rounds to nearest
/// even, overflows to ±inf and writes every NaN as ggml's quiet NaN 0x7E00 (with the sign).
/// </summary>
public static class Float16
{
    // 2^112: moves a half's exponent (bias 15), placed in a float's exponent field (bias 127), to its value.
    static readonly float ExponentRebias = BitConverter.UInt32BitsToSingle((127u + 112u) << 23);

    /// <summary>
    /// The float of the half bit pattern <paramref name="h"/>. WHY the multiply: the half's exponent and
    /// mantissa shifted into float position and scaled by 2^112 give normal and subnormal halves exactly (a
    /// subnormal half becomes a normal float), with one code path and no table (ggml's x86 fallback).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort h)
    {
        uint magnitude = (uint)(h & 0x7fff) << 13;
        float value = (h & 0x7c00) == 0x7c00
            ? BitConverter.UInt32BitsToSingle(magnitude | 0x7f800000) // inf, NaN (payload kept)
            : BitConverter.UInt32BitsToSingle(magnitude) * ExponentRebias;
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(value) | ((uint)(h & 0x8000) << 16));
    }

    /// <summary>The half bit pattern of <paramref name="f"/>, as ggml's GGML_FP32_TO_FP16 writes it.</summary>
    public static ushort FromFloat(float f)
    {
        if (float.IsNaN(f)) return (ushort)((BitConverter.SingleToUInt32Bits(f) >> 16 & 0x8000) | 0x7E00);
        return BitConverter.HalfToUInt16Bits((Half)f); // round to nearest even, ±inf past 65504
    }

    /// <summary><see cref="ToFloat"/> of eight halves at once (the F16 dot product's inner step).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToFloats(Vector128<ushort> h)
    {
        var bits = Widen(h); // zero-extended halves
        var magnitude = (bits & Vector256.Create(0x7fffu)) << 13;
        var special = Vector256.Equals(bits & Vector256.Create(0x7c00u), Vector256.Create(0x7c00u));
        var finite = magnitude.AsSingle() * Vector256.Create(ExponentRebias);
        var nonFinite = (magnitude | Vector256.Create(0x7f800000u)).AsSingle();
        var value = Vector256.ConditionalSelect(special.AsSingle(), nonFinite, finite);
        return (value.AsUInt32() | ((bits & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>Eight 16-bit patterns zero-extended to 32-bit lanes (one vpmovzxwd with AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> Widen(Vector128<ushort> h)
        => Avx2.IsSupported ? Avx2.ConvertToVector256Int32(h).AsUInt32() : Vector256.Create(Vector128.WidenLower(h), Vector128.WidenUpper(h));

    /// <summary>Converts a row of halves to floats.</summary>
    public static unsafe void ToFloats(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination is shorter than source");
        fixed (ushort* s = source)
        fixed (float* d = destination)
        {
            int i = 0;
            for (; i + 8 <= source.Length; i += 8) ToFloats(Vector128.Load(s + i)).Store(d + i);
            for (; i < source.Length; i++) d[i] = ToFloat(s[i]);
        }
    }

    /// <summary>
    /// Σ w[i]·x[i] for a row of F16 weights and float activations: halves converted in registers, four FMA
    /// accumulators (the weights stream once, 2 bytes per value).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe float Dot(ushort* w, float* x, int n)
    {
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            a0 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i)), Vector256.Load(x + i), a0);
            a1 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i + 8)), Vector256.Load(x + i + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i + 16)), Vector256.Load(x + i + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i + 24)), Vector256.Load(x + i + 24), a3);
        }
        for (; i + 8 <= n; i += 8) a0 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i)), Vector256.Load(x + i), a0);
        float sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        for (; i < n; i++) sum += ToFloat(w[i]) * x[i];
        return sum;
    }

    /// <summary>Converts a row of floats to halves (<see cref="FromFloat"/> each).</summary>
    public static void FromFloats(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination is shorter than source");
        for (int i = 0; i < source.Length; i++) destination[i] = FromFloat(source[i]);
    }
}
