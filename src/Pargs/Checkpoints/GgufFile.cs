using System.Text;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>ggml tensor types as numbered in ggml.h (only some are readable; see <see cref="GgufFile.ReadTensor(GgufTensorInfo)"/>).</summary>
public enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
}

/// <summary>
/// One tensor's header entry. <see cref="Shape"/> is row-major (torch order): GGUF lists dims innermost
/// first (ne[0] = row length), so they are reversed here. <see cref="Offset"/> is absolute in the file.
/// </summary>
public sealed record GgufTensorInfo(string Name, long[] Shape, GgmlType Type, long Offset);

/// <summary>
/// A parsed GGUF file (llama.cpp's format): header, metadata and tensor directory, versions 1 to 3.
/// Version 1 stores counts and string lengths as u32, later versions as u64. Metadata values become
/// string, long (all integer types), double (f32/f64), bool, or arrays: string[], float[], double[],
/// int[] (8–32-bit signed and 8–16-bit unsigned), long[] (u32, i64, u64), bool[], object[] (nested).
/// Tensor data is read on demand, converted to float32.
/// </summary>
public sealed class GgufFile
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian u32
    public required string Path { get; init; }
    public required uint Version { get; init; }
    public required Dictionary<string, object> Metadata { get; init; }
    public required IReadOnlyList<GgufTensorInfo> Tensors { get; init; }
    public required int Alignment { get; init; }
    public required long DataStart { get; init; }

    public GgufTensorInfo? Find(string name) => Tensors.FirstOrDefault(t => t.Name == name);

    public string? GetString(string key) => Metadata.TryGetValue(key, out var v) ? v as string : null;
    public long? GetInteger(string key) => Metadata.TryGetValue(key, out var v) && v is long l ? l : null;
    public double? GetNumber(string key) => Metadata.TryGetValue(key, out var v) ? v switch { double d => d, long l => l, _ => null } : null;

    public static StoredType? StoredTypeOf(GgmlType type) => type switch
    {
        GgmlType.F32 => StoredType.F32,
        GgmlType.F16 => StoredType.F16,
        GgmlType.BF16 => StoredType.BF16,
        GgmlType.Q8_0 => StoredType.Q8_0,
        GgmlType.Q4_0 => StoredType.Q4_0,
        _ => null,
    };

    public torch.Tensor ReadTensor(string name) =>
        ReadTensor(Find(name) ?? throw new PargsException($"{Path}: no tensor named \"{name}\""));

    /// <summary>The tensor as float32 on the CPU; F32, F16, BF16, Q8_0 and Q4_0 are supported.</summary>
    public torch.Tensor ReadTensor(GgufTensorInfo info)
    {
        var stored = StoredTypeOf(info.Type)
            ?? throw new PargsException($"{Path}: tensor \"{info.Name}\" has type {info.Type} ({(uint)info.Type}), which Pargs does not read (supported: F32, F16, BF16, Q8_0, Q4_0)");
        using var file = File.OpenHandle(Path, FileMode.Open, FileAccess.Read);
        return StoredTensorReader.Read(file, Path, $"tensor \"{info.Name}\"", info.Offset, info.Shape, stored);
    }

    public static GgufFile Read(string path)
    {
        if (!File.Exists(path)) throw new PargsException($"{path}: file not found");
        using var stream = new BufferedStream(File.OpenRead(path), 1 << 16);
        using var reader = new BinaryReader(stream, Encoding.UTF8);
        try
        {
            return Parse(path, reader, stream.Length);
        }
        catch (EndOfStreamException)
        {
            throw new PargsException($"{path}: file ends inside the GGUF header at byte {stream.Position} (truncated file?)");
        }
    }

    static GgufFile Parse(string path, BinaryReader r, long fileLength)
    {
        if (fileLength < 8 || r.ReadUInt32() != Magic)
            throw new PargsException($"{path}: not a GGUF file (the first 4 bytes are not \"GGUF\")");
        uint version = r.ReadUInt32();
        if (version is < 1 or > 3)
            throw new PargsException($"{path}: GGUF version {version} is not supported (Pargs reads versions 1, 2 and 3)");
        bool v1 = version == 1;
        long Count(string what)
        {
            long n = v1 ? r.ReadUInt32() : (long)r.ReadUInt64();
            // A count larger than the remaining bytes cannot be honest; refuse before allocating for it.
            if (n < 0 || n > fileLength - r.BaseStream.Position)
                throw new PargsException($"{path}: {what} {n} at byte {r.BaseStream.Position} is larger than the file allows (corrupt or truncated?)");
            return n;
        }
        string ReadString(string what) => Encoding.UTF8.GetString(r.ReadBytes(checked((int)Count(what + " length"))));

        long tensorCount = Count("tensor count");
        long kvCount = Count("metadata count");
        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            string key = ReadString("metadata key");
            uint type = r.ReadUInt32();
            metadata[key] = ReadValue(path, r, type, key, Count, ReadString);
        }

        int alignment = 32;
        if (metadata.TryGetValue("general.alignment", out var a))
        {
            if (a is not long al || al <= 0 || (al & (al - 1)) != 0 || al > 1 << 20)
                throw new PargsException($"{path}: general.alignment must be a positive power of two, got {a}");
            alignment = (int)al;
        }

        var raw = new List<(string Name, long[] Shape, GgmlType Type, long Offset)>();
        for (long i = 0; i < tensorCount; i++)
        {
            string name = ReadString("tensor name");
            uint dims = r.ReadUInt32();
            if (dims > 8) throw new PargsException($"{path}: tensor \"{name}\" claims {dims} dimensions (GGUF allows at most 4)");
            var ne = new long[dims];
            for (int d = 0; d < dims; d++)
            {
                ne[d] = v1 ? r.ReadUInt32() : (long)r.ReadUInt64();
                if (ne[d] < 0) throw new PargsException($"{path}: tensor \"{name}\" has a negative dimension");
            }
            var type = (GgmlType)r.ReadUInt32();
            long offset = (long)r.ReadUInt64();
            Array.Reverse(ne); // ne[0] is the innermost (contiguous) dimension; torch lists it last
            raw.Add((name, ne, type, offset));
        }

        long position = r.BaseStream.Position;
        long dataStart = (position + alignment - 1) / alignment * alignment;
        var tensors = new List<GgufTensorInfo>();
        foreach (var (name, shape, type, offset) in raw)
        {
            var info = new GgufTensorInfo(name, shape, type, dataStart + offset);
            if (offset < 0 || offset % alignment != 0)
                throw new PargsException($"{path}: tensor \"{name}\" offset {offset} is not a multiple of the alignment {alignment}");
            if (StoredTypeOf(type) is { } stored)
            {
                long? bytes = StoredTensorReader.ByteCount(stored, StoredTensorReader.ElementCount(shape));
                if (bytes is null)
                    throw new PargsException($"{path}: tensor \"{name}\" of type {type} has {StoredTensorReader.ElementCount(shape)} elements, not a whole number of blocks");
                if (info.Offset + bytes > fileLength)
                    throw new PargsException($"{path}: tensor \"{name}\" needs bytes {info.Offset}..{info.Offset + bytes} but the file has only {fileLength} (truncated file?)");
            }
            tensors.Add(info);
        }
        return new GgufFile { Path = path, Version = version, Metadata = metadata, Tensors = tensors, Alignment = alignment, DataStart = dataStart };
    }

    static object ReadValue(string path, BinaryReader r, uint type, string key, Func<string, long> count, Func<string, string> readString)
    {
        switch (type)
        {
            case 0: return (long)r.ReadByte();
            case 1: return (long)r.ReadSByte();
            case 2: return (long)r.ReadUInt16();
            case 3: return (long)r.ReadInt16();
            case 4: return (long)r.ReadUInt32();
            case 5: return (long)r.ReadInt32();
            // The shortest decimal that round-trips the float32, so 1e-5f becomes 1e-5 and not 9.99999974e-6.
            case 6: return double.Parse(r.ReadSingle().ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
            case 7: return r.ReadByte() != 0;
            case 8: return readString($"string \"{key}\"");
            case 9:
            {
                uint elementType = r.ReadUInt32();
                int n = checked((int)count($"array \"{key}\" length"));
                switch (elementType)
                {
                    case 0: case 1: case 2: case 3: case 5:
                    {
                        var values = new int[n];
                        for (int i = 0; i < n; i++) values[i] = (int)(long)ReadValue(path, r, elementType, key, count, readString);
                        return values;
                    }
                    case 4: case 10: case 11:
                    {
                        var values = new long[n];
                        for (int i = 0; i < n; i++) values[i] = (long)ReadValue(path, r, elementType, key, count, readString);
                        return values;
                    }
                    case 6:
                    {
                        var values = new float[n];
                        for (int i = 0; i < n; i++) values[i] = r.ReadSingle();
                        return values;
                    }
                    case 12:
                    {
                        var values = new double[n];
                        for (int i = 0; i < n; i++) values[i] = r.ReadDouble();
                        return values;
                    }
                    case 7:
                    {
                        var values = new bool[n];
                        for (int i = 0; i < n; i++) values[i] = r.ReadByte() != 0;
                        return values;
                    }
                    case 8:
                    {
                        var values = new string[n];
                        for (int i = 0; i < n; i++) values[i] = readString($"array \"{key}\" element");
                        return values;
                    }
                    default:
                    {
                        var values = new object[n];
                        for (int i = 0; i < n; i++) values[i] = ReadValue(path, r, elementType, key, count, readString);
                        return values;
                    }
                }
            }
            case 10: return unchecked((long)r.ReadUInt64());
            case 11: return r.ReadInt64();
            case 12: return r.ReadDouble();
            default:
                throw new PargsException($"{path}: metadata \"{key}\" has unknown value type {type} at byte {r.BaseStream.Position - 4}");
        }
    }
}
