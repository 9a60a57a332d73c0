using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Pargs.Json;
using TorchSharp;

namespace Pargs.Checkpoints;

/// <summary>
/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON header
/// mapping each tensor name to <c>dtype</c>, <c>shape</c> and <c>data_offsets</c> [begin, end) within the
/// data section that follows, plus an optional <c>__metadata__</c> string map. Reads F32, F16, BF16 and F64
/// into float32; writes F32, F16 or BF16. Every inconsistency is a <see cref="PargsException"/> naming file and tensor,
/// because a silently misread weight shows up much later as a model that merely talks nonsense.
/// </summary>
public static class Safetensors
{
    /// <summary>The spec's own cap; a larger "header length" means the file is not safetensors.</summary>
    const long MaxHeaderBytes = 100_000_000;

    /// <summary>One tensor's entry in the header, offsets already made absolute within the file.</summary>
    public sealed record Entry(string Name, StoredType Type, long[] Shape, long Begin, long End);

    public sealed record Header(IReadOnlyList<Entry> Entries, IReadOnlyDictionary<string, string> Metadata, long DataStart);

    /// <summary>Loads every tensor of <paramref name="path"/> as float32 on the CPU.</summary>
    public static Dictionary<string, torch.Tensor> Load(string path)
    {
        var header = ReadHeader(path);
        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            foreach (var e in header.Entries)
                tensors[e.Name] = StoredTensorReader.Read(file, path, $"tensor \"{e.Name}\"", e.Begin, e.Shape, e.Type);
            return tensors;
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>Parses and validates the header without reading tensor data.</summary>
    public static Header ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new PargsException($"{path}: file not found");
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        long fileLength = RandomAccess.GetLength(file);
        if (fileLength < 8)
            throw new PargsException($"{path}: {fileLength} bytes is too short for a safetensors file (needs at least the 8-byte header length)");
        Span<byte> lengthBytes = stackalloc byte[8];
        StoredTensorReader.ReadExactly(file, lengthBytes, 0, path, "the header length");
        ulong headerLength = BitConverter.ToUInt64(lengthBytes);
        if (headerLength > MaxHeaderBytes)
            throw new PargsException($"{path}: header length {headerLength} is implausible (over {MaxHeaderBytes} bytes); not a safetensors file?");
        if (8 + (long)headerLength > fileLength)
            throw new PargsException($"{path}: file is shorter ({fileLength} bytes) than its header says (8 + {headerLength} bytes); truncated?");
        var headerBytes = new byte[headerLength];
        StoredTensorReader.ReadExactly(file, headerBytes, 8, path, "the JSON header");
        long dataStart = 8 + (long)headerLength;
        return ParseHeader(path, headerBytes, dataStart, fileLength - dataStart);
    }

    static Header ParseHeader(string path, byte[] headerBytes, long dataStart, long dataLength)
    {
        // The checked reader refuses invalid UTF-8, duplicate tensor names and deep nesting at parse time.
        var root = CheckedJson.Parse(headerBytes, $"{path} (safetensors header)", new CheckedJsonLimits(MaxHeaderBytes, 64));
        if (!root.IsObject)
            throw new PargsException($"{path}: safetensors header must be a JSON object, got {root.Kind}");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        foreach (var (name, value) in root.Fields())
        {
            if (name == "__metadata__")
            {
                if (!value.IsObject)
                    throw new PargsException($"{path}: \"__metadata__\" must be an object of strings");
                foreach (var (key, m) in value.Fields())
                    metadata[key] = m.IsString ? m.String() : m.Node?.ToJsonString() ?? "null";
                continue;
            }
            entries.Add(ParseEntry(path, name, value, dataStart, dataLength));
        }

        // Tensors may not share bytes: sorted by start, each must end before the next begins.
        var sorted = entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Begin < sorted[i - 1].End)
                throw new PargsException($"{path}: tensor \"{sorted[i].Name}\" overlaps tensor \"{sorted[i - 1].Name}\" in the data section");
        return new Header(entries, metadata, dataStart);
    }

    static Entry ParseEntry(string path, string name, CheckedJson value, long dataStart, long dataLength)
    {
        string where = $"{path}: tensor \"{name}\"";
        if (!value.IsObject) throw new PargsException($"{where}: header entry must be an object");
        if (!value["dtype"].IsString)
            throw new PargsException($"{where}: missing string field \"dtype\"");
        string dtype = value["dtype"].String();
        StoredType type = dtype switch
        {
            "F32" => StoredType.F32,
            "F16" => StoredType.F16,
            "BF16" => StoredType.BF16,
            "F64" => StoredType.F64,
            // Old checkpoints keep boolean mask buffers beside the weights (Pythia's attention.bias); the family drops them.
            "BOOL" => StoredType.Bool,
            _ => throw new PargsException($"{where}: unsupported dtype \"{dtype}\" (Pargs reads F32, F16, BF16, F64 and BOOL)"),
        };
        var shapeNode = value["shape"];
        if (!shapeNode.IsArray)
            throw new PargsException($"{where}: missing array field \"shape\"");
        var shape = new List<long>();
        foreach (var d in shapeNode.Items())
        {
            long dim = -1;
            if (!d.IsNumber || !d.Node!.GetValue<JsonElement>().TryGetInt64(out dim) || dim < 0)
                throw new PargsException($"{where}: shape must hold non-negative integers, got {shapeNode.Shown}");
            shape.Add(dim);
        }
        var offsetsNode = value["data_offsets"];
        long begin = 0, end = 0;
        if (!offsetsNode.IsArray || offsetsNode.AsArray().Count != 2
            || !offsetsNode[0].IsNumber || !offsetsNode[0].Node!.GetValue<JsonElement>().TryGetInt64(out begin)
            || !offsetsNode[1].IsNumber || !offsetsNode[1].Node!.GetValue<JsonElement>().TryGetInt64(out end))
            throw new PargsException($"{where}: \"data_offsets\" must be [begin, end] integers");
        if (begin < 0 || end < begin || end > dataLength)
            throw new PargsException($"{where}: data_offsets [{begin}, {end}] lie outside the data section of {dataLength} bytes (truncated file or corrupt header)");
        long expected = StoredTensorReader.CheckedByteCount(type, shape, path, $"tensor \"{name}\"");
        if (end - begin != expected)
            throw new PargsException($"{where}: data_offsets span {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {expected}");
        return new Entry(name, type, shape.ToArray(), dataStart + begin, dataStart + end);
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> as F32 safetensors, names in ordinal order, atomically
    /// (a temporary file renamed over <paramref name="path"/>, so readers never see half a file).
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null,
                            StoredType storeAs = StoredType.F32)
    {
        if (storeAs is not (StoredType.F32 or StoredType.F16 or StoredType.BF16))
            throw new ArgumentOutOfRangeException(nameof(storeAs), storeAs, "safetensors are written as F32, F16 or BF16");
        int width = storeAs == StoredType.F32 ? 4 : 2;
        string dtype = storeAs.ToString();
        var names = tensors.Keys.OrderBy(n => n, StringComparer.Ordinal).ToList();

        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            if (metadata != null)
                foreach (var (k, v) in metadata)
                    if (k != "format") json.WriteString(k, v);
            json.WriteEndObject();
            long offset = 0;
            for (int i = 0; i < names.Count; i++)
            {
                long bytes = tensors[names[i]].numel() * width;
                json.WriteStartObject(names[i]);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (long d in tensors[names[i]].shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces so the data section starts 8-byte aligned (as the reference writer does).
        var header = new List<byte>(headerStream.ToArray());
        while (header.Count % 8 != 0) header.Add((byte)' ');

        Pargs.IO.AtomicFile.Write(path, output =>
        {
            output.Write(BitConverter.GetBytes((ulong)header.Count));
            output.Write(header.ToArray());
            foreach (string name in names)
            {
                // One tensor's float32 CPU copy at a time (none for a float32 CPU tensor): converted all before the first byte
                // was written, a model held in bf16 or f16 had a second, float32 copy of itself in memory while it was saved.
                using var scope = torch.NewDisposeScope();
                WriteFloats(output, tensors[name].detach().to(torch.ScalarType.Float32).cpu().contiguous(), storeAs);
            }
        });
    }

    static unsafe void WriteFloats(Stream output, torch.Tensor t, StoredType storeAs)
    {
        long count = t.numel();
        var start = StoredTensorReader.DataPointer(t);
        const int chunk = 1 << 22;
        byte[]? halves = storeAs == StoredType.F32 ? null : new byte[2 * Math.Min(chunk, count)];
        for (long i = 0; i < count; i += chunk)
        {
            var span = new ReadOnlySpan<float>(start + i, (int)Math.Min(chunk, count - i));
            if (halves is null) { output.Write(MemoryMarshal.AsBytes(span)); continue; }
            // The same rounding as the GGUF writer (round to nearest even), so both files hold the same values.
            int n = GgufConverter.Encode(span, storeAs == StoredType.F16 ? GgmlType.F16 : GgmlType.BF16, halves);
            output.Write(halves, 0, n);
        }
    }
}
