using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Pargs.Weights;

/// <summary>
/// Every half bit pattern as its float (65,536 floats, 256 KiB, built once with <see cref="Float16.ToFloat"/>, so
/// exact): the scale of a Q8_0 / Q4_0 block becomes one load. WHY: .NET exposes no F16C, and the two scalar
/// conversions per block (weight and activation scale) were a large share of a one-row product's instructions —
/// ggml keeps the same table where it lacks F16C. A model's scales use few distinct halves, so the lines read stay
/// in L1. Callers read <see cref="Values"/> into a local before their loop (a static read inside a fully optimised
/// loop costs a class-initialisation check there).
/// </summary>
public static unsafe class HalfTable
{
    public static readonly float* Values = Build();

    static float* Build()
    {
        var table = (float*)NativeMemory.AlignedAlloc(65536 * sizeof(float), 64); // lives as long as the process
        for (int h = 0; h < 65536; h++) table[h] = Float16.ToFloat((ushort)h);
        return table;
    }

    /// <summary>The float of the half stored (little-endian) at <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float At(float* table, byte* p) => table[Unsafe.ReadUnaligned<ushort>(p)];
}
