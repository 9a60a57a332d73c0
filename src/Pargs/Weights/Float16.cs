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
    // 2^-14, the smallest normal half, and 2^-24, the step of the subnormal halves. Constants, not static readonly
    // fields: a static field read inside a fully optimised loop costs a class-initialisation check there, and the
    // JIT then kept every accumulator in memory (measured 2× slower).
    const float MinNormal = 6.103515625e-05f;
    const float SubnormalStep = 5.9604644775390625e-8f;

    /// <summary>
    /// The float of the half bit pattern <paramref name="h"/>: exponent rebiased by an integer add (normal halves),
    /// ±inf and NaN payloads kept, subnormal halves as m·2^-24. WHY no float multiply of the raw bits (the usual
    /// trick): a subnormal half then goes through a float subnormal, and x86 takes a ~150-cycle microcode assist
    /// on every such operand — measured 2.5× slower on real-looking weights, where 0.2 % of values are subnormal.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort h)
    {
        uint exponent = h & 0x7c00u, magnitude = (uint)(h & 0x7fff) << 13;
        float value = exponent == 0 ? (h & 0x3ff) * SubnormalStep
            : exponent == 0x7c00 ? BitConverter.UInt32BitsToSingle(magnitude | 0x7f800000)
            : BitConverter.UInt32BitsToSingle(magnitude + (112u << 23));
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(value) | ((uint)(h & 0x8000) << 16));
    }

    /// <summary>The half bit pattern of <paramref name="f"/>, as ggml's GGML_FP32_TO_FP16 writes it.</summary>
    public static ushort FromFloat(float f)
    {
        if (float.IsNaN(f)) return (ushort)((BitConverter.SingleToUInt32Bits(f) >> 16 & 0x8000) | 0x7E00);
        return BitConverter.HalfToUInt16Bits((Half)f); // round to nearest even, ±inf past 65504
    }

    /// <summary>
    /// <see cref="ToFloat"/> of eight halves at once (the F16 dot product's inner step), with integer operations and
    /// normal floats only: zero and subnormal halves as 2^-14·(1 + m/1024) − 2^-14 = m·2^-24, exact.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToFloats(Vector128<ushort> h)
    {
        var bits = Widen(h);
        var exponent = bits & Vector256.Create(0x7c00u);
        var rebiased = ((bits & Vector256.Create(0x7fffu)) << 13) + Vector256.Create(112u << 23);
        rebiased += Vector256.Equals(exponent, Vector256.Create(0x7c00u)) & Vector256.Create(112u << 23); // inf, NaN: exponent 255
        var small = (rebiased + Vector256.Create(1u << 23)).AsSingle() - Vector256.Create(MinNormal);
        var value = Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256<uint>.Zero).AsSingle(), small, rebiased.AsSingle());
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
    /// accumulators (the weights stream once, 2 bytes per value). WHY two conversions: .NET exposes no F16C
    /// (vcvtph2ps), and the exact conversion (<see cref="ToFloats(Vector128{ushort})"/>) costs ~14 operations per 8
    /// values. Most weights are normal halves or zeros, which a sign-extend, shift, mask and one multiply by 2^112
    /// convert exactly; each 32 values are checked for subnormal, infinite or NaN halves first (a multiply of a
    /// float subnormal would take a microcode assist), and only such chunks take the exact path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe float Dot(ushort* w, float* x, int n)
    {
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        int i = 0;
        if (!Only256Bit && Avx512BW.IsSupported && Fma.IsSupported)
        {
            // The same conversion on 512-bit vectors: sixteen halves per sign-extend, shift, mask and multiply, which
            // halves the instructions of this compute-bound loop (the CPU has AVX-512; .NET still exposes no vcvtph2ps).
            var b0 = Vector512<float>.Zero; var b1 = b0;
            var magnitudeMask = Vector512.Create((short)0x7fff);
            var one = Vector512.Create((short)1);
            var subnormalSpan = Vector512.Create((ushort)0x03ff);
            var finiteLimit = Vector512.Create((short)0x7bff);
            var keep = Vector512.Create(unchecked((int)0x8FFFE000));
            var rebias = Vector512.Create(TwoTo112);
            for (; i + 32 <= n; i += 32)
            {
                // 4 KiB ahead in the stream (one line per 32 halves): the hardware prefetchers stop at page boundaries,
                // and a long row (ffn_down: 9.5 KiB) crosses two (896 × 4864 from memory: 6.8 → 13.5 GB/s in a probe).
                // A prefetch past the end of the mapping does not fault.
                Sse.Prefetch1(w + i + PrefetchHalves);
                var h = Vector512.Load((short*)(w + i)) & magnitudeMask;
                // Subnormal lanes: |h| − 1 < 0x3ff unsigned (zero wraps to 0xffff); inf/NaN lanes: |h| > 0x7bff. One test of
                // both masks: two short-circuit tests (LessThanAny || GreaterThanAny) compiled to two flag moves each.
                var special = Vector512.LessThan((h - one).AsUInt16(), subnormalSpan) | Vector512.GreaterThan(h, finiteLimit).AsUInt16();
                if (special != Vector512<ushort>.Zero)
                {
                    a0 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i)), Vector256.Load(x + i), a0);
                    a1 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i + 8)), Vector256.Load(x + i + 8), a1);
                    a2 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i + 16)), Vector256.Load(x + i + 16), a2);
                    a3 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i + 24)), Vector256.Load(x + i + 24), a3);
                    continue;
                }
                b0 = Avx512F.FusedMultiplyAdd(NormalToFloats512(w + i, keep, rebias), Vector512.Load(x + i), b0);
                b1 = Avx512F.FusedMultiplyAdd(NormalToFloats512(w + i + 16, keep, rebias), Vector512.Load(x + i + 16), b1);
            }
            var b = b0 + b1;
            a0 += b.GetLower();
            a1 += b.GetUpper();
        }
        if (Avx2.IsSupported)
        {
            var magnitudeMask = Vector256.Create((short)0x7fff);
            var subnormalLimit = Vector256.Create((short)0x0400);
            var finiteLimit = Vector256.Create((short)0x7bff);
            var keep = Vector256.Create(unchecked((int)0x8FFFE000));
            var rebias = Vector256.Create(TwoTo112);
            for (; i + 32 <= n; i += 32)
            {
                var h0 = Avx.LoadVector256((short*)(w + i)) & magnitudeMask;
                var h1 = Avx.LoadVector256((short*)(w + i + 16)) & magnitudeMask;
                // Lanes that are subnormal (0 < |h| < 0x400) or inf/NaN (|h| > 0x7bff), as int16 compares.
                var special = (Avx2.CompareGreaterThan(h0, Vector256<short>.Zero) & Avx2.CompareGreaterThan(subnormalLimit, h0))
                            | (Avx2.CompareGreaterThan(h1, Vector256<short>.Zero) & Avx2.CompareGreaterThan(subnormalLimit, h1))
                            | Avx2.CompareGreaterThan(h0, finiteLimit) | Avx2.CompareGreaterThan(h1, finiteLimit);
                if (!Avx.TestZ(special, special))
                {
                    a0 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i)), Vector256.Load(x + i), a0);
                    a1 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i + 8)), Vector256.Load(x + i + 8), a1);
                    a2 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i + 16)), Vector256.Load(x + i + 16), a2);
                    a3 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i + 24)), Vector256.Load(x + i + 24), a3);
                    continue;
                }
                a0 = Vector256.FusedMultiplyAdd(NormalToFloats(w + i, keep, rebias), Vector256.Load(x + i), a0);
                a1 = Vector256.FusedMultiplyAdd(NormalToFloats(w + i + 8, keep, rebias), Vector256.Load(x + i + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(NormalToFloats(w + i + 16, keep, rebias), Vector256.Load(x + i + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(NormalToFloats(w + i + 24, keep, rebias), Vector256.Load(x + i + 24), a3);
            }
        }
        for (; i + 8 <= n; i += 8) a0 = Vector256.FusedMultiplyAdd(ToFloats(Vector128.Load(w + i)), Vector256.Load(x + i), a0);
        float sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        for (; i < n; i++) sum += ToFloat(w[i]) * x[i];
        return sum;
    }

    /// <summary>How far ahead (in 2-byte values, 4 KiB) the 512-bit F16 and BF16 dot products prefetch their row.</summary>
    internal const int PrefetchHalves = 2048;

    // 2^112 (exactly): moves a half's exponent, placed in a float's exponent field, to its value.
    const float TwoTo112 = 5.192296858534828e+33f;

    /// <summary>
    /// Eight normal or zero halves as floats: sign-extended, so after the shift the sign sits at bit 31 (and copies
    /// of it at bits 28–30, masked off); exponent and mantissa land in float position, and × 2^112 rebiases.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe Vector256<float> NormalToFloats(ushort* h, Vector256<int> keep, Vector256<float> rebias)
        => Avx.Multiply((Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((short*)h), 13) & keep).AsSingle(), rebias);

    /// <summary>
    /// <see cref="NormalToFloats"/> for sixteen halves (vpmovsxwd zmm, vpslld, vpandd, vmulps).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe Vector512<float> NormalToFloats512(ushort* h, Vector512<int> keep, Vector512<float> rebias)
        => Avx512F.Multiply((Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load((short*)h)), 13) & keep).AsSingle(), rebias);

    /// <summary>
    /// Whether <see cref="Dot"/> and <see cref="BFloat16.Dot"/> keep to 256-bit vectors even where the CPU has AVX-512 (default false). Both paths give
    /// the same products in another summation order; the switch lets tests run the 256-bit path on an AVX-512 machine.
    /// Default false with no initializer: a static initializer would give the class a constructor whose check the JIT
    /// then places in the optimised loops' methods.
    /// </summary>
    public static bool Only256Bit { get; set; }

    /// <summary>Converts a row of floats to halves (<see cref="FromFloat"/> each).</summary>
    public static void FromFloats(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination is shorter than source");
        for (int i = 0; i < source.Length; i++) destination[i] = FromFloat(source[i]);
    }
}
