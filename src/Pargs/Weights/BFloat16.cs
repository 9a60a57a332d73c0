using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// bfloat16 (ggml's BF16, safetensors' BF16) as raw 16-bit patterns: the upper half of a float32. bf16 → float
/// is exact; float → bf16 rounds to nearest even as ggml does (ggml_compute_fp32_to_bf16): finite values may
/// round up to ±inf, subnormals are kept, and a NaN keeps its upper bits with the quiet bit forced on.
/// </summary>
public static class BFloat16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    public static ushort FromFloat(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64); // NaN: truncate, force quiet
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    /// <summary>Eight bf16 values as floats: a shift into the upper half of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToFloats(Vector128<ushort> b)
        => (Float16.Widen(b) << 16).AsSingle();

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

    /// <summary>Σ w[i]·x[i] for a row of BF16 weights and float activations (see <see cref="Float16.Dot"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe float Dot(ushort* w, float* x, int n)
    {
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        int i = 0;
        if (!Float16.Only256Bit && Avx512BW.IsSupported)
        {
            // Sixteen values per zero-extend and shift where the CPU has AVX-512 (Float16.Only256Bit: the switch for both 2-byte formats).
            var b0 = Vector512<float>.Zero; var b1 = b0;
            for (; i + 32 <= n; i += 32)
            {
                Sse.Prefetch1(w + i + Float16.PrefetchHalves); // as Float16.Dot
                b0 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(w + i)), 16).AsSingle(), Vector512.Load(x + i), b0);
                b1 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(w + i + 16)), 16).AsSingle(), Vector512.Load(x + i + 16), b1);
            }
            a0 += b0.GetLower() + b1.GetLower();
            a1 += b0.GetUpper() + b1.GetUpper();
        }
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

    public static void FromFloats(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination is shorter than source");
        for (int i = 0; i < source.Length; i++) destination[i] = FromFloat(source[i]);
    }
}
