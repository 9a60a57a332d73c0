using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>How a tensor's elements are stored on disk. Quantized types come in fixed-size blocks.</summary>
public enum StoredType { F32, F16, BF16, F64, Q8_0, Q4_0, Bool }

/// <summary>
/// Reads one stored tensor out of a file into a float32 CPU tensor. Shared by the safetensors and GGUF
/// readers: both keep tensors as raw little-endian bytes at an offset, so only the element decoding differs.
/// Reads are streamed in chunks, so a multi-gigabyte checkpoint never needs a second full copy in memory.
/// </summary>
internal static class StoredTensorReader
{
    /// <summary>Bytes per block and elements per block (1 element per "block" for plain floats).</summary>
    public static (int Bytes, int Elements) BlockOf(StoredType type) => type switch
    {
        StoredType.F32 => (4, 1),
        StoredType.F16 => (2, 1),
        StoredType.BF16 => (2, 1),
        StoredType.F64 => (8, 1),
        StoredType.Q8_0 => (34, 32), // f16 scale + 32 signed bytes (ggml block_q8_0)
        StoredType.Q4_0 => (18, 32), // f16 scale + 16 bytes of 4-bit values (ggml block_q4_0)
        StoredType.Bool => (1, 1),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>
    /// Stored size in bytes of <paramref name="elements"/> elements, or null when they do not fill whole blocks.
    /// A size beyond long range (only a forged shape gets there) is refused by <see cref="CheckedByteCount"/>.
    /// </summary>
    public static long? ByteCount(StoredType type, long elements)
    {
        var (bytes, perBlock) = BlockOf(type);
        if (elements % perBlock != 0) return null;
        long blocks = elements / perBlock;
        return blocks > long.MaxValue / bytes ? long.MaxValue : blocks * bytes;
    }

    /// <summary>The product of the dimensions, or null when a dimension is negative or the product overflows a long.</summary>
    public static long? TryElementCount(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) return null;
            if (d != 0 && n > long.MaxValue / d) return null;
            n *= d;
        }
        return n;
    }

    /// <summary>The element count of a shape read from a file, refused (naming the file and tensor) when it cannot be honest.</summary>
    public static long CheckedElementCount(IReadOnlyList<long> shape, string path, string tensorName) =>
        TryElementCount(shape) ?? throw new PargsException($"{path}: {tensorName} has shape [{string.Join(", ", shape)}], whose element count is negative or overflows");

    /// <summary>
    /// Bytes a tensor of this shape occupies, refused when the count is not whole blocks or exceeds what a
    /// file can hold; every reader bounds it against the file's length before allocating.
    /// </summary>
    public static long CheckedByteCount(StoredType type, IReadOnlyList<long> shape, string path, string tensorName)
    {
        long elements = CheckedElementCount(shape, path, tensorName);
        long bytes = ByteCount(type, elements)
            ?? throw new PargsException($"{path}: {tensorName} of type {type} has {elements} elements, not a whole number of {BlockOf(type).Elements}-element blocks");
        if (bytes == long.MaxValue) throw new PargsException($"{path}: {tensorName} has shape [{string.Join(", ", shape)}], too large to store");
        return bytes;
    }

    /// <summary>Elements of a shape the caller has already validated (via <see cref="CheckedElementCount"/> or its own bounds).</summary>
    public static long ElementCount(long[] shape) => checked(TryElementCount(shape) ?? throw new OverflowException("unchecked shape"));

    public static unsafe torch.Tensor Read(SafeFileHandle file, string path, string tensorName, long offset, long[] shape, StoredType type)
    {
        long elements = ElementCount(shape);
        var result = torch.empty(shape, torch.ScalarType.Float32);
        try
        {
            if (elements == 0) return result;
            var destination = DataPointer(result);
            var (blockBytes, blockElements) = BlockOf(type);
            // Chunks of whole blocks, about 16 MiB each, so spans stay well inside int range.
            long blocksPerChunk = Math.Max(1, (16 << 20) / blockBytes);
            long totalBlocks = elements / blockElements;
            byte[]? buffer = type == StoredType.F32 ? null : ArrayPool<byte>.Shared.Rent((int)(blocksPerChunk * blockBytes));
            try
            {
                for (long block = 0; block < totalBlocks; block += blocksPerChunk)
                {
                    long blocks = Math.Min(blocksPerChunk, totalBlocks - block);
                    int chunkBytes = (int)(blocks * blockBytes);
                    int chunkElements = (int)(blocks * blockElements);
                    long fileOffset = offset + block * blockBytes;
                    var output = new Span<float>(destination + block * blockElements, chunkElements);
                    if (type == StoredType.F32)
                    {
                        // Little-endian float32 on disk is already the in-memory layout: read straight into the tensor.
                        ReadExactly(file, MemoryMarshal.AsBytes(output), fileOffset, path, tensorName);
                        continue;
                    }
                    var input = buffer.AsSpan(0, chunkBytes);
                    ReadExactly(file, input, fileOffset, path, tensorName);
                    Decode(type, input, output);
                }
            }
            finally
            {
                if (buffer != null) ArrayPool<byte>.Shared.Return(buffer);
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Start of a contiguous float32 CPU tensor's storage (TorchSharp exposes it as a byte span).</summary>
    public static unsafe float* DataPointer(torch.Tensor t) =>
        (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));

    public static void ReadExactly(SafeFileHandle file, Span<byte> destination, long offset, string path, string what)
    {
        while (destination.Length > 0)
        {
            int n = RandomAccess.Read(file, destination, offset);
            if (n <= 0)
                throw new PargsException($"{path}: file ends at byte {offset} while reading {what} (truncated file?)");
            destination = destination[n..];
            offset += n;
        }
    }

    public static void Decode(StoredType type, ReadOnlySpan<byte> input, Span<float> output)
    {
        switch (type)
        {
            case StoredType.F32:
                MemoryMarshal.Cast<byte, float>(input).CopyTo(output);
                break;
            case StoredType.F16:
            {
                var halves = MemoryMarshal.Cast<byte, Half>(input);
                for (int i = 0; i < output.Length; i++) output[i] = (float)halves[i];
                break;
            }
            case StoredType.BF16:
            {
                // bfloat16 is the top half of a float32's bits.
                var raw = MemoryMarshal.Cast<byte, ushort>(input);
                var bits = MemoryMarshal.Cast<float, uint>(output);
                for (int i = 0; i < output.Length; i++) bits[i] = (uint)raw[i] << 16;
                break;
            }
            case StoredType.F64:
            {
                var doubles = MemoryMarshal.Cast<byte, double>(input);
                for (int i = 0; i < output.Length; i++) output[i] = (float)doubles[i];
                break;
            }
            case StoredType.Bool: // a mask buffer (e.g. GPT-NeoX's attention.bias): 0 or 1
                for (int i = 0; i < output.Length; i++) output[i] = input[i] != 0 ? 1f : 0f;
                break;
            case StoredType.Q8_0:
                for (int b = 0; b < output.Length / 32; b++)
                {
                    var block = input.Slice(b * 34, 34);
                    float scale = (float)MemoryMarshal.Read<Half>(block);
                    for (int i = 0; i < 32; i++) output[b * 32 + i] = scale * (sbyte)block[2 + i];
                }
                break;
            case StoredType.Q4_0:
                for (int b = 0; b < output.Length / 32; b++)
                {
                    var block = input.Slice(b * 18, 18);
                    float scale = (float)MemoryMarshal.Read<Half>(block);
                    // Low nibbles hold elements 0..15, high nibbles 16..31, each stored with an offset of 8.
                    for (int i = 0; i < 16; i++)
                    {
                        output[b * 32 + i] = scale * ((block[2 + i] & 0x0F) - 8);
                        output[b * 32 + 16 + i] = scale * ((block[2 + i] >> 4) - 8);
                    }
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type));
        }
    }
}
