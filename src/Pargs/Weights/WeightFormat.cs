using Pargs.Checkpoints;

namespace Pargs.Weights;

/// <summary>
/// The storage formats Pargs computes on directly, numbered as ggml numbers its types (ggml.h, GGUF tensor
/// types), so a GGUF tensor's type converts by value. Q8_K is an activation format only (llama.cpp quantizes
/// the input of a K-quant product to it); GGUF files do not store weights in it.
/// </summary>
public enum WeightFormat : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
}

/// <summary>Block geometry and names of <see cref="WeightFormat"/>s.</summary>
public static class WeightFormats
{
    /// <summary>Elements in a K-quant super-block (ggml's QK_K).</summary>
    public const int SuperBlock = 256;

    /// <summary>Elements per block (1 for the plain float formats).</summary>
    public static int BlockElements(WeightFormat format) => format switch
    {
        WeightFormat.F32 or WeightFormat.F16 or WeightFormat.BF16 => 1,
        WeightFormat.Q4_0 or WeightFormat.Q8_0 => 32,
        WeightFormat.Q4_K or WeightFormat.Q5_K or WeightFormat.Q6_K or WeightFormat.Q8_K => SuperBlock,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary>Bytes per block, as ggml's block structs are laid out (no padding).</summary>
    public static int BlockBytes(WeightFormat format) => format switch
    {
        WeightFormat.F32 => 4,
        WeightFormat.F16 or WeightFormat.BF16 => 2,
        WeightFormat.Q8_0 => Q8_0.BlockBytes,
        WeightFormat.Q4_0 => Q4_0.BlockBytes,
        WeightFormat.Q4_K => Q4_K.BlockBytes,
        WeightFormat.Q5_K => Q5_K.BlockBytes,
        WeightFormat.Q6_K => Q6_K.BlockBytes,
        WeightFormat.Q8_K => Q8_K.BlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary>ggml's name of the format ("q4_K", "bf16", ...).</summary>
    public static string Name(WeightFormat format) => format switch
    {
        WeightFormat.F32 => "f32", WeightFormat.F16 => "f16", WeightFormat.BF16 => "bf16",
        WeightFormat.Q4_0 => "q4_0", WeightFormat.Q8_0 => "q8_0", WeightFormat.Q4_K => "q4_K",
        WeightFormat.Q5_K => "q5_K", WeightFormat.Q6_K => "q6_K", WeightFormat.Q8_K => "q8_K",
        _ => $"ggml type {(uint)format}",
    };

    /// <summary>
    /// Bytes of <paramref name="elements"/> elements stored in <paramref name="format"/>. A count that is not a
    /// whole number of blocks is an error naming <paramref name="what"/> (a tensor, usually).
    /// </summary>
    public static long ByteCount(WeightFormat format, long elements, string what)
    {
        int perBlock = BlockElements(format);
        if (elements < 0 || elements % perBlock != 0)
            throw new PargsException($"{what}: {elements} elements of {Name(format)} are not a whole number of {perBlock}-element blocks");
        return elements / perBlock * BlockBytes(format);
    }

    /// <summary>The weight format of a GGUF tensor type; a type Pargs cannot compute on is an error naming the tensor.</summary>
    public static WeightFormat FromGgml(GgmlType type, string tensor) => type switch
    {
        GgmlType.F32 => WeightFormat.F32, GgmlType.F16 => WeightFormat.F16, GgmlType.BF16 => WeightFormat.BF16,
        GgmlType.Q4_0 => WeightFormat.Q4_0, GgmlType.Q8_0 => WeightFormat.Q8_0, GgmlType.Q4_K => WeightFormat.Q4_K,
        GgmlType.Q5_K => WeightFormat.Q5_K, GgmlType.Q6_K => WeightFormat.Q6_K,
        _ => throw new PargsException($"tensor \"{tensor}\" has ggml type {type} ({(uint)type}), which Pargs does not compute on (supported: f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K)"),
    };
}
