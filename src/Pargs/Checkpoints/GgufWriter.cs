using System.Text;

namespace Pargs.Checkpoints;

/// <summary>GGUF metadata value types, numbered as in gguf.h (<c>enum gguf_type</c>).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>
/// One typed metadata value. GGUF keeps the exact width of every number (llama.cpp reads
/// <c>block_count</c> as u32 and refuses an i64), so the type travels with the value.
/// For <see cref="GgufValueType.Array"/>, <see cref="ElementType"/> names the elements' type and
/// <see cref="Value"/> is an <c>IReadOnlyList</c> of them (nested arrays are lists of <see cref="GgufValue"/>).
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue U8(byte v) => new(GgufValueType.UInt8, v);
    public static GgufValue I8(sbyte v) => new(GgufValueType.Int8, v);
    public static GgufValue U16(ushort v) => new(GgufValueType.UInt16, v);
    public static GgufValue I16(short v) => new(GgufValueType.Int16, v);
    public static GgufValue U32(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue I32(int v) => new(GgufValueType.Int32, v);
    public static GgufValue F32(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue String(string v) => new(GgufValueType.String, v);
    public static GgufValue U64(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue I64(long v) => new(GgufValueType.Int64, v);
    public static GgufValue F64(double v) => new(GgufValueType.Float64, v);
    public static GgufValue Strings(IReadOnlyList<string> v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Floats(IReadOnlyList<float> v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue Ints(IReadOnlyList<int> v) => new(GgufValueType.Array, v, GgufValueType.Int32);
    public static GgufValue Array(GgufValueType elementType, System.Collections.IList values) => new(GgufValueType.Array, values, elementType);
}

/// <summary>
/// Writes GGUF files (llama.cpp's format): header, typed metadata, tensor directory and tensor data,
/// each tensor's data starting on a multiple of the alignment (32, or <c>general.alignment</c>).
/// Version 3 is what llama.cpp reads today; versions 1 and 2 (u32 counts in v1) can be written too,
/// because Pargs reads them and tests need such files. Tensor data is streamed from callbacks, so a
/// multi-gigabyte model is never held twice. <see cref="Save"/> writes atomically.
/// </summary>
public sealed class GgufWriter
{
    public const uint CurrentVersion = 3;
    public const int DefaultAlignment = 32;

    readonly uint _version;
    readonly List<(string Key, GgufValue Value)> _metadata = [];
    readonly List<PendingTensor> _tensors = [];
    readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    readonly HashSet<string> _names = new(StringComparer.Ordinal);

    sealed record PendingTensor(string Name, long[] Shape, GgmlType Type, long ByteCount, Action<Stream> WriteData);

    public GgufWriter(uint version = CurrentVersion)
    {
        if (version is < 1 or > 3) throw new ArgumentOutOfRangeException(nameof(version), $"GGUF version {version} cannot be written (1, 2 or 3)");
        _version = version;
    }

    public int Alignment { get; private set; } = DefaultAlignment;
    public IReadOnlyList<string> Keys => _metadata.Select(m => m.Key).ToList();
    public int TensorCount => _tensors.Count;

    /// <summary>Adds a metadata entry; a key may appear once. <c>general.alignment</c> (u32, a power of two) sets the alignment.</summary>
    public GgufWriter Set(string key, GgufValue value)
    {
        if (!_keys.Add(key)) throw new ArgumentException($"GGUF metadata key \"{key}\" set twice");
        CheckValue(key, value);
        if (key == "general.alignment")
        {
            uint a = value.Type == GgufValueType.UInt32 ? (uint)value.Value : 0;
            if (a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
                throw new ArgumentException("general.alignment must be a u32 power of two");
            Alignment = (int)a;
        }
        _metadata.Add((key, value));
        return this;
    }

    public bool Has(string key) => _keys.Contains(key);

    /// <summary>
    /// Adds a tensor. <paramref name="shape"/> is row-major (torch order, the last dimension contiguous);
    /// it is written innermost first as GGUF wants. <paramref name="writeData"/> must write exactly the
    /// tensor's stored size in bytes for <paramref name="type"/>.
    /// </summary>
    public GgufWriter AddTensor(string name, long[] shape, GgmlType type, Action<Stream> writeData)
    {
        if (!_names.Add(name)) throw new ArgumentException($"GGUF tensor \"{name}\" added twice");
        if (shape.Length is < 1 or > 4 || shape.Any(d => d < 0)) throw new ArgumentException($"GGUF tensor \"{name}\": shape [{string.Join(", ", shape)}] must have 1 to 4 non-negative dimensions");
        var (blockBytes, perBlock) = BlockSize(type) ?? throw new ArgumentException($"GGUF tensor \"{name}\": no block size known for type {type}");
        // ggml quantizes along rows: a block never straddles two rows.
        if (shape[^1] % perBlock != 0) throw new ArgumentException($"GGUF tensor \"{name}\": row length {shape[^1]} is not a multiple of {type}'s block of {perBlock}");
        long bytes = StoredTensorReader.ElementCount(shape) / perBlock * blockBytes;
        _tensors.Add(new PendingTensor(name, (long[])shape.Clone(), type, bytes, writeData));
        return this;
    }

    public GgufWriter AddTensor(string name, long[] shape, GgmlType type, byte[] data) =>
        AddTensor(name, shape, type, s => s.Write(data));

    /// <summary>Bytes per block and elements per block of a ggml type (ggml's type traits), or null for a type not listed.</summary>
    public static (int Bytes, int Elements)? BlockSize(GgmlType type) => type switch
    {
        GgmlType.F32 => (4, 1),
        GgmlType.F16 or GgmlType.BF16 => (2, 1),
        GgmlType.Q4_0 => (18, 32), // f16 scale + 16 bytes of nibbles
        GgmlType.Q4_1 => (20, 32), // f16 scale, f16 min + 16 bytes
        GgmlType.Q5_0 => (22, 32), // f16 scale + 4 bytes of fifth bits + 16 bytes
        GgmlType.Q5_1 => (24, 32),
        GgmlType.Q8_0 => (34, 32), // f16 scale + 32 signed bytes
        GgmlType.Q8_1 => (36, 32),
        GgmlType.Q2_K => (84, 256),
        GgmlType.Q3_K => (110, 256),
        GgmlType.Q4_K => (144, 256),
        GgmlType.Q5_K => (176, 256),
        GgmlType.Q6_K => (210, 256),
        GgmlType.Q8_K => (292, 256),
        _ => null,
    };

    /// <summary>Writes the whole file to <paramref name="output"/> (which need not be seekable).</summary>
    public void Write(Stream output)
    {
        using var w = new BinaryWriter(output, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(_version);
        Count(w, _tensors.Count);
        Count(w, _metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            String(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value.Type, value.Value, value.ElementType);
        }
        long offset = 0;
        foreach (var t in _tensors)
        {
            String(w, t.Name);
            w.Write((uint)t.Shape.Length);
            for (int d = t.Shape.Length - 1; d >= 0; d--) Count(w, t.Shape[d]);
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offset += Padded(t.ByteCount);
        }
        // The header's length is computed, not asked of the stream, so the output need not be seekable.
        Pad(w, HeaderLength());
        foreach (var t in _tensors)
        {
            w.Flush();
            var counting = new CountingStream(output);
            t.WriteData(counting);
            if (counting.Written != t.ByteCount)
                throw new InvalidOperationException($"GGUF tensor \"{t.Name}\": wrote {counting.Written} bytes, expected {t.ByteCount}");
            Pad(w, t.ByteCount);
        }
        w.Flush();
    }

    /// <summary>Writes to a temporary file beside <paramref name="path"/> and renames it into place, so a failed or interrupted write never leaves a partial file under the final name.</summary>
    public void Save(string path)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new PargsException($"{path}: folder {dir} does not exist");
        if (Directory.Exists(full)) throw new PargsException($"{path}: is a folder, not a file name");
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    public byte[] ToArray()
    {
        using var ms = new MemoryStream();
        Write(ms);
        return ms.ToArray();
    }

    long Padded(long n) => (n + Alignment - 1) / Alignment * Alignment;

    void Pad(BinaryWriter w, long written)
    {
        for (long i = written; i < Padded(written); i++) w.Write((byte)0);
    }

    long CountLength => _version == 1 ? 4 : 8;
    long StringLength(string s) => CountLength + Encoding.UTF8.GetByteCount(s);

    long HeaderLength()
    {
        long n = 4 + 4 + 2 * CountLength;
        foreach (var (key, value) in _metadata) n += StringLength(key) + 4 + ValueLength(value.Type, value.Value, value.ElementType);
        foreach (var t in _tensors) n += StringLength(t.Name) + 4 + t.Shape.Length * CountLength + 4 + 8;
        return n;
    }

    long ValueLength(GgufValueType type, object value, GgufValueType elementType) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        GgufValueType.String => StringLength((string)value),
        GgufValueType.Array => 4 + CountLength + Elements(value).Sum(e => ValueLength(elementType, Unwrap(e, elementType).Value, Unwrap(e, elementType).ElementType)),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    static IEnumerable<object> Elements(object list) => ((System.Collections.IEnumerable)list).Cast<object>();

    /// <summary>Array elements are plain values, except nested arrays, which are <see cref="GgufValue"/>s.</summary>
    static (object Value, GgufValueType ElementType) Unwrap(object element, GgufValueType type) =>
        type == GgufValueType.Array ? (((GgufValue)element).Value, ((GgufValue)element).ElementType) : (element, GgufValueType.UInt8);

    void Count(BinaryWriter w, long n)
    {
        if (_version == 1) w.Write(checked((uint)n)); else w.Write((ulong)n);
    }

    void String(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        Count(w, bytes.Length);
        w.Write(bytes);
    }

    void WriteValue(BinaryWriter w, GgufValueType type, object value, GgufValueType elementType)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)value); break;
            case GgufValueType.Int8: w.Write((sbyte)value); break;
            case GgufValueType.UInt16: w.Write((ushort)value); break;
            case GgufValueType.Int16: w.Write((short)value); break;
            case GgufValueType.UInt32: w.Write((uint)value); break;
            case GgufValueType.Int32: w.Write((int)value); break;
            case GgufValueType.Float32: w.Write((float)value); break;
            case GgufValueType.Bool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: String(w, (string)value); break;
            case GgufValueType.UInt64: w.Write((ulong)value); break;
            case GgufValueType.Int64: w.Write((long)value); break;
            case GgufValueType.Float64: w.Write((double)value); break;
            case GgufValueType.Array:
            {
                var elements = Elements(value).ToList();
                w.Write((uint)elementType);
                Count(w, elements.Count);
                foreach (var e in elements)
                {
                    if (elementType == GgufValueType.Array)
                    {
                        var nested = (GgufValue)e;
                        w.Write((uint)nested.ElementType);
                        var inner = Elements(nested.Value).ToList();
                        Count(w, inner.Count);
                        foreach (var x in inner) WriteValue(w, nested.ElementType, x, GgufValueType.UInt8);
                    }
                    else WriteValue(w, elementType, e, GgufValueType.UInt8);
                }
                break;
            }
            default: throw new ArgumentOutOfRangeException(nameof(type));
        }
    }

    /// <summary>Checks a value's CLR type against its GGUF type up front, so a wrong cast fails at Set, naming the key, not halfway through a file.</summary>
    static void CheckValue(string key, GgufValue value)
    {
        bool ok = value.Type switch
        {
            GgufValueType.UInt8 => value.Value is byte,
            GgufValueType.Int8 => value.Value is sbyte,
            GgufValueType.UInt16 => value.Value is ushort,
            GgufValueType.Int16 => value.Value is short,
            GgufValueType.UInt32 => value.Value is uint,
            GgufValueType.Int32 => value.Value is int,
            GgufValueType.Float32 => value.Value is float,
            GgufValueType.Bool => value.Value is bool,
            GgufValueType.String => value.Value is string,
            GgufValueType.UInt64 => value.Value is ulong,
            GgufValueType.Int64 => value.Value is long,
            GgufValueType.Float64 => value.Value is double,
            GgufValueType.Array => value.Value is System.Collections.IEnumerable and not string
                && Elements(value.Value).All(e => value.ElementType == GgufValueType.Array
                    ? e is GgufValue { Type: GgufValueType.Array } nested && nested.ElementType != GgufValueType.Array && IsElementOk(nested)
                    : IsScalar(value.ElementType, e)),
            _ => false,
        };
        if (!ok) throw new ArgumentException($"GGUF metadata \"{key}\": value {value.Value.GetType().Name} does not match type {value.Type}{(value.Type == GgufValueType.Array ? $" of {value.ElementType}" : "")}");

        static bool IsElementOk(GgufValue nested) => Elements(nested.Value).All(x => IsScalar(nested.ElementType, x));
        static bool IsScalar(GgufValueType type, object e) => type != GgufValueType.Array && new GgufValue(type, e) is var v && CheckScalar(v);
        static bool CheckScalar(GgufValue v)
        {
            try { CheckValue("", v); return true; }
            catch (ArgumentException) { return false; }
        }
    }

    /// <summary>Counts bytes passed through, so a tensor callback that writes too few or too many is caught.</summary>
    sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }
        public override void Write(byte[] buffer, int offset, int count) { inner.Write(buffer, offset, count); Written += count; }
        public override void Write(ReadOnlySpan<byte> buffer) { inner.Write(buffer); Written += buffer.Length; }
        public override void WriteByte(byte value) { inner.WriteByte(value); Written++; }
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
