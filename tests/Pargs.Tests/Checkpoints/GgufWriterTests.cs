using System.Buffers.Binary;
using System.Text;
using Pargs.Checkpoints;

namespace Pargs.Tests.Checkpoints;

/// <summary>The library's GGUF writer: checked byte by byte where the format is fixed, and read back by <see cref="GgufFile"/>.</summary>
public class GgufWriterTests
{
    [Fact]
    public void Header_and_a_metadata_entry_are_laid_out_as_gguf_v3_specifies()
    {
        var bytes = new GgufWriter().Set("general.architecture", GgufValue.String("llama")).ToArray();
        Assert.Equal("GGUF"u8.ToArray(), bytes[..4]);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(0ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)));  // tensors
        Assert.Equal(1ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16))); // metadata entries
        Assert.Equal(20ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(24))); // key length
        Assert.Equal("general.architecture", Encoding.UTF8.GetString(bytes, 32, 20));
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(52)));  // GGUF_TYPE_STRING
        Assert.Equal(5ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(56)));
        Assert.Equal("llama", Encoding.UTF8.GetString(bytes, 64, 5));
        Assert.Equal(96, bytes.Length); // 69 header bytes padded to the 32-byte alignment
    }

    [Fact]
    public void Arrays_of_every_element_type_and_nested_arrays_read_back()
    {
        using var dir = new TempDir();
        string path = dir.File("arrays.gguf");
        new GgufWriter()
            .Set("u8s", GgufValue.Array(GgufValueType.UInt8, new byte[] { 1, 255 }))
            .Set("i16s", GgufValue.Array(GgufValueType.Int16, new short[] { -2, 3 }))
            .Set("u32s", GgufValue.Array(GgufValueType.UInt32, new uint[] { 4_000_000_000 }))
            .Set("i64s", GgufValue.Array(GgufValueType.Int64, new long[] { -5_000_000_000 }))
            .Set("f64s", GgufValue.Array(GgufValueType.Float64, new double[] { 0.1, -2 }))
            .Set("bools", GgufValue.Array(GgufValueType.Bool, new bool[] { true, false }))
            .Set("nested", GgufValue.Array(GgufValueType.Array, new[] { GgufValue.Ints([1, 2]), GgufValue.Ints([3]) }))
            .Set("empty", GgufValue.Strings([]))
            .Save(path);
        var m = GgufFile.Read(path).Metadata;
        Assert.Equal(new[] { 1, 255 }, m["u8s"]);
        Assert.Equal(new[] { -2, 3 }, m["i16s"]);
        Assert.Equal(new[] { 4_000_000_000L }, m["u32s"]);
        Assert.Equal(new[] { -5_000_000_000L }, m["i64s"]);
        Assert.Equal(new[] { 0.1, -2 }, m["f64s"]);
        Assert.Equal(new[] { true, false }, m["bools"]);
        var nested = Assert.IsType<object[]>(m["nested"]);
        Assert.Equal(new[] { 1, 2 }, nested[0]);
        Assert.Equal(new[] { 3 }, nested[1]);
        Assert.Equal(Array.Empty<string>(), m["empty"]);
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    public void Tensor_data_starts_on_the_alignment_and_reads_back(uint alignment)
    {
        using var dir = new TempDir();
        string path = dir.File("t.gguf");
        var writer = new GgufWriter();
        if (alignment != GgufWriter.DefaultAlignment) writer.Set("general.alignment", GgufValue.U32(alignment));
        float[] a = [1, 2, 3], b = [4, 5, 6, 7, 8, 9];
        writer.AddTensor("a", [3], GgmlType.F32, a.SelectMany(BitConverter.GetBytes).ToArray())
              .AddTensor("b", [2, 3], GgmlType.F32, b.SelectMany(BitConverter.GetBytes).ToArray())
              .Save(path);
        var gguf = GgufFile.Read(path);
        Assert.Equal((int)alignment, gguf.Alignment);
        Assert.All(gguf.Tensors, t => Assert.Equal(0, t.Offset % alignment));
        Assert.Equal(new long[] { 2, 3 }, gguf.Find("b")!.Shape);
        using var tb = gguf.ReadTensor("b");
        Assert.Equal(b, tb.data<float>().ToArray());
        Assert.Equal(gguf.Find("b")!.Offset + (24 + alignment - 1) / alignment * alignment, new FileInfo(path).Length); // the last tensor is padded too
    }

    [Fact]
    public void Misuse_is_caught_when_it_happens_naming_the_key_or_tensor()
    {
        var w = new GgufWriter().Set("k", GgufValue.U32(1));
        Assert.Contains("\"k\"", Assert.Throws<ArgumentException>(() => w.Set("k", GgufValue.U32(2))).Message);
        Assert.Contains("\"x\"", Assert.Throws<ArgumentException>(() => w.Set("x", new GgufValue(GgufValueType.UInt32, 5))).Message); // an int, not a uint
        Assert.Contains("\"y\"", Assert.Throws<ArgumentException>(() => w.Set("y", GgufValue.Array(GgufValueType.Float32, new double[] { 1 }))).Message);
        Assert.Throws<ArgumentException>(() => w.Set("general.alignment", GgufValue.U32(48)));
        Assert.Contains("\"q\"", Assert.Throws<ArgumentException>(() => w.AddTensor("q", [2, 40], GgmlType.Q8_0, new byte[80])).Message); // rows of 40 are not whole Q8_0 blocks
        Assert.Throws<ArgumentOutOfRangeException>(() => new GgufWriter(4));

        var shortData = new GgufWriter().AddTensor("t", [4], GgmlType.F32, new byte[12]);
        Assert.Contains("\"t\"", Assert.Throws<InvalidOperationException>(() => shortData.ToArray()).Message);
    }

    [Fact]
    public void Save_is_atomic_a_failed_write_leaves_the_old_file_and_no_temporary()
    {
        using var dir = new TempDir();
        string path = dir.File("model.gguf");
        File.WriteAllText(path, "previous");
        var failing = new GgufWriter().AddTensor("t", [4], GgmlType.F32, _ => throw new IOException("disk full"));
        Assert.Throws<IOException>(() => failing.Save(path));
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(dir.Path));

        new GgufWriter().Set("a", GgufValue.Bool(true)).Save(path);
        Assert.Equal(true, GgufFile.Read(path).Metadata["a"]);
        Assert.Equal(new[] { path }, Directory.GetFiles(dir.Path));
        Assert.Throws<PargsException>(() => new GgufWriter().Save(dir.File("missing/model.gguf")));
    }
}
