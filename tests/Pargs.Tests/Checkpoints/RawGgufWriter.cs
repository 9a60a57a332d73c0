using System.Text;

namespace Pargs.Tests.Checkpoints;

// Byte-level GGUF for hostile inputs the library writer (Pargs.Checkpoints.GgufWriter) rightly refuses to write:
// claimed lengths beyond the file, duplicate keys, raw values of any type.

/// <summary>Builds small GGUF files byte by byte for tests (versions 1–3), independent of the reader.</summary>
sealed class RawGgufWriter(uint version)
{
    readonly List<(string Key, uint Type, Action<BinaryWriter> Write)> _kv = [];
    readonly List<(string Name, long[] Ne, uint Type, byte[] Data)> _tensors = [];
    public uint Magic { get; set; } = 0x46554747;
    public int Alignment { get; set; } = 32;

    void Count(BinaryWriter w, long n)
    {
        if (version == 1) w.Write((uint)n); else w.Write((ulong)n);
    }
    void Str(BinaryWriter w, string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        Count(w, b.Length);
        w.Write(b);
    }

    public RawGgufWriter Add(string key, uint type, Action<BinaryWriter> write) { _kv.Add((key, type, write)); return this; }
    public RawGgufWriter U32(string key, uint v) => Add(key, 4, w => w.Write(v));
    public RawGgufWriter I32(string key, int v) => Add(key, 5, w => w.Write(v));
    public RawGgufWriter F32(string key, float v) => Add(key, 6, w => w.Write(v));
    public RawGgufWriter String(string key, string v) => Add(key, 8, w => Str(w, v));
    public RawGgufWriter Strings(string key, string[] v) => Add(key, 9, w => { w.Write(8u); Count(w, v.Length); foreach (var s in v) Str(w, s); });
    public RawGgufWriter Floats(string key, float[] v) => Add(key, 9, w => { w.Write(6u); Count(w, v.Length); foreach (var f in v) w.Write(f); });
    public RawGgufWriter Ints(string key, int[] v) => Add(key, 9, w => { w.Write(5u); Count(w, v.Length); foreach (var i in v) w.Write(i); });

    /// <summary><paramref name="ne"/> innermost first, as GGUF stores it.</summary>
    public RawGgufWriter Tensor(string name, long[] ne, uint type, byte[] data) { _tensors.Add((name, ne, type, data)); return this; }
    public RawGgufWriter TensorF32(string name, long[] ne, float[] values) =>
        Tensor(name, ne, 0, values.SelectMany(BitConverter.GetBytes).ToArray());

    public byte[] Build()
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write(Magic);
        w.Write(version);
        Count(w, _tensors.Count);
        Count(w, _kv.Count);
        foreach (var (key, type, write) in _kv)
        {
            Str(w, key);
            w.Write(type);
            write(w);
        }
        long offset = 0;
        var offsets = new List<long>();
        foreach (var (name, ne, type, data) in _tensors)
        {
            Str(w, name);
            w.Write((uint)ne.Length);
            foreach (long d in ne) { if (version == 1) w.Write((uint)d); else w.Write((ulong)d); }
            w.Write(type);
            w.Write((ulong)offset);
            offsets.Add(offset);
            offset += (data.Length + Alignment - 1) / Alignment * Alignment;
        }
        void Pad() { while (ms.Position % Alignment != 0) w.Write((byte)0); }
        Pad();
        foreach (var t in _tensors)
        {
            w.Write(t.Data);
            Pad();
        }
        w.Flush();
        return ms.ToArray();
    }

    public string Save(string path)
    {
        File.WriteAllBytes(path, Build());
        return path;
    }
}
