using System.Runtime.InteropServices;

namespace Pargs.Tests.Weights;

/// <summary>
/// The records of Golden/ggml-quants.bin, written by tools/ggml-golden from llama.cpp's own ggml library
/// (quantize_row_*_ref, dequantize_row_*, the f16/bf16 conversions) on fixed inputs.
/// </summary>
public static class GgmlGolden
{
    static readonly Lazy<Dictionary<string, byte[]>> records = new(Read);

    public static string PathOnDisk => Path.Combine(TestPaths.RepoRoot, "tests", "Pargs.Tests", "Weights", "Golden", "ggml-quants.bin");

    public static byte[] Bytes(string name) => records.Value.TryGetValue(name, out var b) ? b : throw new KeyNotFoundException($"golden record {name}");
    public static float[] Floats(string name) => MemoryMarshal.Cast<byte, float>(Bytes(name)).ToArray();
    public static ushort[] UInt16s(string name) => MemoryMarshal.Cast<byte, ushort>(Bytes(name)).ToArray();

    static Dictionary<string, byte[]> Read()
    {
        var result = new Dictionary<string, byte[]>();
        using var reader = new BinaryReader(File.OpenRead(PathOnDisk));
        while (reader.BaseStream.Position < reader.BaseStream.Length)
        {
            string name = System.Text.Encoding.ASCII.GetString(reader.ReadBytes(reader.ReadByte()));
            result[name] = reader.ReadBytes(checked((int)reader.ReadUInt32()));
        }
        return result;
    }
}
