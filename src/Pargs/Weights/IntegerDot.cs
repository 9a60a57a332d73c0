using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Weights;

/// <summary>
/// The AVX2 integer steps the quantized dot products share: 32 byte products summed into eight int32 lanes.
/// vpmaddubsw multiplies unsigned by signed bytes, so a signed×signed product moves the sign of w onto a
/// (vpsignb) and multiplies |w| by it — llama.cpp's approach. The int16 pair sums cannot saturate for the
/// values these formats hold (|w| ≤ 128, |a| ≤ 127: 2·128·127 = 32512). Where the CPU has AVX-VNNI, vpdpbusd does
/// the byte products and their sum into int32 in one instruction.
/// </summary>
public static class IntegerDot
{
    /// <summary>
    /// Whether <see cref="Signed"/> uses AVX-VNNI (default: where the CPU has it). Both paths give the same integers;
    /// the switch lets tests and benchmarks run the AVX2 path on a VNNI machine.
    /// </summary>
    public static bool VnniEnabled { get; set; } = AvxVnni.IsSupported;

    /// <summary>
    /// Eight lanes whose total is Σ w[i]·a[i] over 32 signed bytes. <paramref name="vnni"/>: <see cref="UseVnni"/>,
    /// read once per row by the caller (a static read inside the loop costs a class-initialisation check there).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Signed(Vector256<sbyte> w, Vector256<sbyte> a, bool vnni)
        => vnni
            ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(w), Avx2.Sign(a, w)) // vpdpbusd: both steps in one
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(a, w)), Vector256.Create((short)1));

    /// <summary>Whether <see cref="Signed"/> should take the VNNI path: enabled and supported.</summary>
    public static bool UseVnni => VnniEnabled && AvxVnni.IsSupported;

    /// <summary>Sixteen int16 lanes, each the sum of two adjacent products u[i]·a[i] (u unsigned, at most 63 here).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> UnsignedPairs(Vector256<byte> u, Vector256<sbyte> a) => Avx2.MultiplyAddAdjacent(u, a);

    /// <summary>Eight int32 lanes: adjacent int16 lanes multiplied by <paramref name="scales"/> and summed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Scaled(Vector256<short> pairs, Vector256<short> scales) => Avx2.MultiplyAddAdjacent(pairs, scales);

    /// <summary>Σ of the eight int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Sum(Vector256<int> v) => Vector256.Sum(v);
}
