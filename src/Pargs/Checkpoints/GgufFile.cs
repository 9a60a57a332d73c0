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

    /// <summary>
    /// An integer metadata value that must fit [min, max]; null when absent. Refuses a value of another type
    /// or out of range (a context_length of 2^32+16 is an error, not 16), naming the file and the key.
    /// </summary>
    public int? GetInt32(string key, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!Metadata.TryGetValue(key, out var v)) return null;
        if (v is not (long or ulong))
            throw new PargsException($"{Path}: GGUF metadata {Shown(key)} must be an integer, got {Describe(v)}");
        if (v is ulong || (long)v < min || (long)v > max)
            throw new PargsException($"{Path}: GGUF metadata {Shown(key)} = {v} is out of range (expected {min} to {max})");
        return (int)(long)v;
    }

    static string Describe(object value) => value switch
    {
        string s => $"the string {Shown(s)}",
        Array a => $"an array of {a.Length}",
        _ => value.ToString() ?? "",
    };
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
        ReadTensor(Find(name) ?? throw new PargsException($"{Path}: no tensor named {Shown(name)}"));

    /// <summary>The tensor as float32 on the CPU; F32, F16, BF16, Q8_0 and Q4_0 are supported.</summary>
    public torch.Tensor ReadTensor(GgufTensorInfo info)
    {
        if (StoredTypeOf(info.Type) is null && info.Type is GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K)
        {
            // K-quants (e.g. the Q6_K head of a Q4_0 file): ggml's dequantization, row by row, from the mapped file.
            using var mapped = Weights.MappedFile.Open(Path);
            return torch.tensor(mapped.Matrix(info).Dequantize(), info.Shape);
        }
        var stored = StoredTypeOf(info.Type)
            ?? throw new PargsException($"{Path}: tensor \"{info.Name}\" has type {info.Type} ({(uint)info.Type}), which Pargs does not read (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)");
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

    /// <summary>Nesting limit for arrays of arrays: real files nest at most one level; a forged file must not exhaust the stack.</summary>
    public const int MaxArrayDepth = 16;

    /// <summary>Longest string Pargs reads from the header (a whole chat template fits many times over).</summary>
    public const int MaxStringBytes = 16 << 20;

    /// <summary>"what" alone, or with the quoted key: "string \"k\"" / "array \"k\" element" ("{0}" marks where the key goes).</summary>
    static string Described(string what, string? key) => key is null ? what : what.Replace("{0}", Shown(key), StringComparison.Ordinal);

    static GgufFile Parse(string path, BinaryReader r, long fileLength)
    {
        if (fileLength < 8 || r.ReadUInt32() != Magic)
            throw new PargsException($"{path}: not a GGUF file (the first 4 bytes are not \"GGUF\")");
        uint version = r.ReadUInt32();
        if (version is < 1 or > 3)
            throw new PargsException($"{path}: GGUF version {version} is not supported (Pargs reads versions 1, 2 and 3)");
        bool v1 = version == 1;
        int lengthBytes = v1 ? 4 : 8;
        // A count whose items (each at least minItemBytes) would not fit in the rest of the file cannot be
        // honest; refuse it before allocating for it. What is counted is named only when a message needs it
        // (key = null: "what" alone; otherwise "what" around the quoted key): a vocabulary's 128k–152k strings
        // must not each format a description they never show.
        long Count(string what, string? key, string suffix, int minItemBytes)
        {
            long at = r.BaseStream.Position;
            ulong n = v1 ? r.ReadUInt32() : r.ReadUInt64();
            long remaining = fileLength - r.BaseStream.Position;
            if (n > (ulong)(remaining / Math.Max(1, minItemBytes)))
                throw new PargsException($"{path}: {Described(what, key)}{suffix} {n} at byte {at} is larger than the file allows (corrupt or truncated?)");
            return (long)n;
        }
        byte[] stringBuffer = new byte[256];
        string ReadString(string what, string? key)
        {
            long at = r.BaseStream.Position;
            long n = Count(what, key, " length", 1);
            if (n > MaxStringBytes)
                throw new PargsException($"{path}: {Described(what, key)} at byte {at} is {n} bytes long, over the {MaxStringBytes} bytes Pargs reads");
            if (n > stringBuffer.Length) stringBuffer = new byte[Math.Max(n, 2L * stringBuffer.Length)];
            var bytes = stringBuffer.AsSpan(0, (int)n);
            r.BaseStream.ReadExactly(bytes); // BinaryReader reads no further ahead than each value, so the stream is where it left off
            return Encoding.UTF8.GetString(bytes);
        }

        long tensorCount = Count("tensor count", null, "", lengthBytes + 4 + 4 + 8);
        long kvCount = Count("metadata count", null, "", lengthBytes + 4 + 1);
        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            long at = r.BaseStream.Position;
            string key = ReadString("metadata key", null);
            uint type = r.ReadUInt32();
            var value = ReadValue(path, r, type, key, Count, ReadString, lengthBytes, depth: 0);
            if (!metadata.TryAdd(key, value))
                throw new PargsException($"{path}: metadata key {Shown(key)} at byte {at} appears twice");
        }

        int alignment = 32;
        if (metadata.TryGetValue("general.alignment", out var a))
        {
            if (a is not long al || al <= 0 || (al & (al - 1)) != 0 || al > 1 << 20)
                throw new PargsException($"{path}: general.alignment must be a positive power of two, got {a}");
            alignment = (int)al;
        }

        var raw = new List<(string Name, long[] Shape, GgmlType Type, long Offset)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < tensorCount; i++)
        {
            string name = ReadString("tensor name", null);
            if (!names.Add(name)) throw new PargsException($"{path}: tensor {Shown(name)} appears twice in the tensor directory");
            uint dims = r.ReadUInt32();
            if (dims > 4) throw new PargsException($"{path}: tensor {Shown(name)} claims {dims} dimensions (GGUF allows at most 4)");
            var ne = new long[dims];
            for (int d = 0; d < dims; d++)
            {
                ulong dim = v1 ? r.ReadUInt32() : r.ReadUInt64();
                if (dim > long.MaxValue) throw new PargsException($"{path}: tensor {Shown(name)} has dimension {dim}, beyond any file");
                ne[d] = (long)dim;
            }
            var type = (GgmlType)r.ReadUInt32();
            ulong offset = r.ReadUInt64();
            if (offset > (ulong)fileLength)
                throw new PargsException($"{path}: tensor {Shown(name)} offset {offset} lies beyond the end of the file ({fileLength} bytes)");
            Array.Reverse(ne); // ne[0] is the innermost (contiguous) dimension; torch lists it last
            raw.Add((name, ne, type, (long)offset));
        }

        long position = r.BaseStream.Position;
        long dataStart = (position + alignment - 1) / alignment * alignment;
        var tensors = new List<GgufTensorInfo>();
        foreach (var (name, shape, type, offset) in raw)
        {
            // Both are at most the file length here, so the sum cannot overflow.
            var info = new GgufTensorInfo(name, shape, type, dataStart + offset);
            if (offset % alignment != 0)
                throw new PargsException($"{path}: tensor {Shown(name)} offset {offset} is not a multiple of the alignment {alignment}");
            long elements = StoredTensorReader.CheckedElementCount(shape, path, $"tensor {Shown(name)}");
            if (StoredTypeOf(type) is { } stored)
            {
                long bytes = StoredTensorReader.CheckedByteCount(stored, shape, path, $"tensor {Shown(name)}");
                if (bytes > fileLength - info.Offset)
                    throw new PargsException($"{path}: tensor {Shown(name)} needs {bytes} bytes from byte {info.Offset} but the file has only {fileLength} (truncated file?)");
            }
            else if (elements > fileLength * 32)
                // Unreadable types are never decoded, but no ggml type stores more than 32 elements per byte.
                throw new PargsException($"{path}: tensor {Shown(name)} claims {elements} elements, more than a {fileLength}-byte file can hold");
            tensors.Add(info);
        }
        return new GgufFile { Path = path, Version = version, Metadata = metadata, Tensors = tensors, Alignment = alignment, DataStart = dataStart };
    }

    /// <summary>
    /// A key or tensor name as a message shows it: quoted, control characters escaped, cut to 80 characters,
    /// because a damaged file's "name" may be any bytes and the message must stay one printable line.
    /// </summary>
    static string Shown(string text)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in text.Length > 80 ? text[..80] : text)
            sb.Append(char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString());
        return sb.Append(text.Length > 80 ? "...\"" : "\"").ToString();
    }

    /// <summary>Smallest encoding of one value of a metadata type, to bound array lengths before allocating.</summary>
    static int MinBytes(uint type, int lengthBytes) => type switch
    {
        0 or 1 or 7 => 1,
        2 or 3 => 2,
        4 or 5 or 6 => 4,
        10 or 11 or 12 => 8,
        8 => lengthBytes,
        9 => 4 + lengthBytes,
        _ => 1,
    };

    delegate long CountReader(string what, string? key, string suffix, int minItemBytes);
    delegate string StringReader(string what, string? key);

    static object ReadValue(string path, BinaryReader r, uint type, string key, CountReader count, StringReader readString,
        int lengthBytes, int depth)
    {
        switch (type)
        {
            case 0: case 1: case 2: case 3: case 4: case 5: return ReadInteger(r, type);
            // The shortest decimal that round-trips the float32, so 1e-5f becomes 1e-5 and not 9.99999974e-6.
            case 6: return double.Parse(r.ReadSingle().ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
            case 7: return r.ReadByte() != 0;
            case 8: return readString("string {0}", key);
            case 9:
            {
                if (depth >= MaxArrayDepth)
                    throw new PargsException($"{path}: metadata {Shown(key)} nests arrays more than {MaxArrayDepth} deep at byte {r.BaseStream.Position}");
                uint elementType = r.ReadUInt32();
                if (elementType > 12)
                    throw new PargsException($"{path}: metadata {Shown(key)} is an array of unknown value type {elementType} at byte {r.BaseStream.Position - 4}");
                long length = count("array {0}", key, " length", MinBytes(elementType, lengthBytes));
                if (length > Array.MaxLength)
                    throw new PargsException($"{path}: metadata {Shown(key)} is an array of {length} values, more than Pargs can hold");
                int n = (int)length;
                // Element by element without boxing: a vocabulary's token types and scores are 128k–152k values each.
                switch (elementType)
                {
                    case 0: case 1: case 2: case 3: case 5:
                    {
                        var values = new int[n];
                        for (int i = 0; i < n; i++) values[i] = (int)ReadInteger(r, elementType);
                        return values;
                    }
                    case 4: case 10: case 11:
                    {
                        var values = new long[n];
                        for (int i = 0; i < n; i++)
                        {
                            if (elementType != 10) { values[i] = elementType == 4 ? r.ReadUInt32() : r.ReadInt64(); continue; }
                            ulong u = r.ReadUInt64();
                            if (u > long.MaxValue)
                                throw new PargsException($"{path}: metadata {Shown(key)} element {i} = {u} at byte {r.BaseStream.Position - 8} is beyond the signed 64-bit range Pargs reads in arrays");
                            values[i] = (long)u;
                        }
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
                        for (int i = 0; i < n; i++) values[i] = readString("array {0} element", key);
                        return values;
                    }
                    default:
                    {
                        var values = new object[n];
                        for (int i = 0; i < n; i++) values[i] = ReadValue(path, r, elementType, key, count, readString, lengthBytes, depth + 1);
                        return values;
                    }
                }
            }
            // u64 values above long range are kept as ulong; the checked accessors refuse them where a number is needed.
            case 10: { ulong u = r.ReadUInt64(); return u <= long.MaxValue ? (long)u : u; }
            case 11: return r.ReadInt64();
            case 12: return r.ReadDouble();
            default:
                throw new PargsException($"{path}: metadata {Shown(key)} has unknown value type {type} at byte {r.BaseStream.Position - 4}");
        }
    }

    /// <summary>A u8/i8/u16/i16/u32/i32 value (types 0–5) as a long.</summary>
    static long ReadInteger(BinaryReader r, uint type) => type switch
    {
        0 => r.ReadByte(),
        1 => r.ReadSByte(),
        2 => r.ReadUInt16(),
        3 => r.ReadInt16(),
        4 => r.ReadUInt32(),
        _ => r.ReadInt32(),
    };
}
