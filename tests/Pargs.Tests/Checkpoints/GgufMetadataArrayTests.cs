using Pargs.Checkpoints;

namespace Pargs.Tests.Checkpoints;

/// <summary>
/// Metadata arrays as GgufFile reads them element by element without boxing: each integer type keeps its value and its
/// array type, and a u64 element beyond the signed range (which the boxed reader turned into an InvalidCastException) is
/// refused in one line naming the key and the element; a string element cut by the end of the file is named as before.
/// </summary>
public class GgufMetadataArrayTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"pargs-ggufarrays-{Guid.NewGuid():N}");

    public GgufMetadataArrayTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Write(RawGgufWriter writer)
    {
        string path = Path.Combine(_dir, $"{Guid.NewGuid():N}.gguf");
        File.WriteAllBytes(path, writer.Build());
        return path;
    }

    static RawGgufWriter Array(RawGgufWriter w, string key, uint elementType, int count, Action<BinaryWriter, int> element) =>
        w.Add(key, 9, b => { b.Write(elementType); b.Write((ulong)count); for (int i = 0; i < count; i++) element(b, i); });

    [Fact]
    public void Every_integer_array_type_keeps_its_values()
    {
        var w = new RawGgufWriter(3);
        Array(w, "u8", 0, 3, (b, i) => b.Write((byte)(250 + i)));
        Array(w, "i8", 1, 3, (b, i) => b.Write((sbyte)(-128 + i)));
        Array(w, "u16", 2, 2, (b, i) => b.Write((ushort)(65535 - i)));
        Array(w, "i16", 3, 2, (b, i) => b.Write((short)(-32768 + i)));
        Array(w, "u32", 4, 2, (b, i) => b.Write(uint.MaxValue - (uint)i));
        Array(w, "i32", 5, 2, (b, i) => b.Write(int.MinValue + i));
        Array(w, "u64", 10, 2, (b, i) => b.Write((ulong)long.MaxValue - (ulong)i));
        Array(w, "i64", 11, 2, (b, i) => b.Write(long.MinValue + i));
        Array(w, "bool", 7, 3, (b, i) => b.Write((byte)(i == 1 ? 1 : 0)));
        var gguf = GgufFile.Read(Write(w));
        Assert.Equal([250, 251, 252], (int[])gguf.Metadata["u8"]);
        Assert.Equal([-128, -127, -126], (int[])gguf.Metadata["i8"]);
        Assert.Equal([65535, 65534], (int[])gguf.Metadata["u16"]);
        Assert.Equal([-32768, -32767], (int[])gguf.Metadata["i16"]);
        Assert.Equal([4294967295L, 4294967294L], (long[])gguf.Metadata["u32"]);
        Assert.Equal([int.MinValue, int.MinValue + 1], (int[])gguf.Metadata["i32"]);
        Assert.Equal([long.MaxValue, long.MaxValue - 1], (long[])gguf.Metadata["u64"]);
        Assert.Equal([long.MinValue, long.MinValue + 1], (long[])gguf.Metadata["i64"]);
        Assert.Equal([false, true, false], (bool[])gguf.Metadata["bool"]);
    }

    [Fact]
    public void A_u64_element_beyond_the_signed_range_is_refused_naming_the_key()
    {
        var w = new RawGgufWriter(3);
        Array(w, "big.values", 10, 2, (b, i) => b.Write(i == 0 ? 1UL : ulong.MaxValue));
        var e = Assert.Throws<PargsException>(() => GgufFile.Read(Write(w)));
        Assert.Contains("\"big.values\" element 1", e.Message);
    }

    [Fact]
    public void A_string_element_cut_by_the_end_of_the_file_is_named()
    {
        var w = new RawGgufWriter(3);
        Array(w, "tokenizer.ggml.tokens", 8, 2, (b, i) => { b.Write(3UL); b.Write("abc"u8.ToArray()); });
        var bytes = w.Build();
        string path = Path.Combine(_dir, "cut.gguf");
        // The second string claims 3 bytes after its length; the file ends one byte into them.
        int end = IndexOfLast(bytes, "abc"u8.ToArray()) + 1;
        File.WriteAllBytes(path, bytes[..end]);
        var e = Assert.Throws<PargsException>(() => GgufFile.Read(path));
        Assert.Contains("array \"tokenizer.ggml.tokens\" element length 3", e.Message);
    }

    static int IndexOfLast(byte[] haystack, byte[] needle)
    {
        for (int i = haystack.Length - needle.Length; i >= 0; i--)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
