using System.Text;
using Pargs.Checkpoints;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

public class SafetensorsTests
{
    /// <summary>A safetensors file written by hand: header JSON (padded) then raw data bytes.</summary>
    static string WriteRaw(string path, string headerJson, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)header.Length));
        f.Write(header);
        f.Write(data);
        return path;
    }

    [Fact]
    public void F32_round_trip_keeps_names_shapes_and_values()
    {
        using var dir = new TempDir();
        var gen = manual_seed(1234);
        var tensors = new Dictionary<string, Tensor>
        {
            ["model.embed_tokens.weight"] = randn(7, 5),
            ["model.norm.weight"] = randn(5),
            ["scalar"] = tensor(3.5f),
            ["empty"] = zeros(0, 4),
        };
        string path = dir.File("model.safetensors");
        Safetensors.Save(path, tensors);

        long headerLength = BitConverter.ToInt64(File.ReadAllBytes(path), 0);
        Assert.Equal(0, headerLength % 8);
        var header = Safetensors.ReadHeader(path);
        Assert.Equal("pt", header.Metadata["format"]);
        Assert.False(File.Exists(path + ".tmp"));

        var loaded = Safetensors.Load(path);
        Assert.Equal(tensors.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, t) in tensors)
        {
            Assert.Equal(t.shape, loaded[name].shape);
            Assert.Equal(ScalarType.Float32, loaded[name].dtype);
            Assert.True(t.eq(loaded[name]).all().item<bool>(), name);
        }
    }

    /// <summary>
    /// Tensors held in bf16, f16 or as a transposed view are converted one at a time while the file is written (no float32
    /// copy of the whole set first): the file holds their float32 values, in their own shapes.
    /// </summary>
    [Fact]
    public void Tensors_not_held_as_contiguous_float32_are_written_as_their_float32_values()
    {
        using var dir = new TempDir();
        _ = manual_seed(77);
        using var a = randn(6, 4);
        using var b = randn(3, 5);
        using var c = randn(4, 2);
        var tensors = new Dictionary<string, Tensor>
        {
            ["bf16"] = a.to(ScalarType.BFloat16),
            ["f16"] = b.to(ScalarType.Float16),
            ["transposed"] = c.t(),
        };
        string path = dir.File("model.safetensors");
        Safetensors.Save(path, tensors);
        var loaded = Safetensors.Load(path);
        foreach (var (name, t) in tensors)
        {
            using var expected = t.to(ScalarType.Float32).contiguous();
            Assert.Equal(t.shape, loaded[name].shape);
            Assert.True(expected.eq(loaded[name]).all().item<bool>(), name);
        }
        Assert.Equal(ScalarType.BFloat16, tensors["bf16"].dtype); // the caller's tensors are left as they were
    }

    [Fact]
    public void Reads_F16_BF16_and_F64_as_float32()
    {
        using var dir = new TempDir();
        float[] values = [1.5f, -2.25f, 0.0f, 2048f, 3.140625f, -0.0078125f];
        var f16 = values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray();
        // bfloat16 = top 16 bits of the float32 (these values are exactly representable).
        var bf16 = values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))).ToArray();
        var f64 = values.SelectMany(v => BitConverter.GetBytes((double)v)).ToArray();
        string header = """
            {"__metadata__":{"format":"pt"},
             "half":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},
             "brain":{"dtype":"BF16","shape":[6],"data_offsets":[12,24]},
             "double":{"dtype":"F64","shape":[3,2],"data_offsets":[24,72]}}
            """;
        string path = WriteRaw(dir.File("mixed.safetensors"), header, [.. f16, .. bf16, .. f64]);

        var loaded = Safetensors.Load(path);
        Assert.Equal(new long[] { 2, 3 }, loaded["half"].shape);
        Assert.Equal(new long[] { 3, 2 }, loaded["double"].shape);
        foreach (var name in new[] { "half", "brain", "double" })
        {
            Assert.Equal(ScalarType.Float32, loaded[name].dtype);
            Assert.Equal(values, loaded[name].data<float>().ToArray());
        }
    }

    [Fact]
    public void Truncated_file_names_the_file_and_tensor()
    {
        using var dir = new TempDir();
        string path = dir.File("cut.safetensors");
        Safetensors.Save(path, new Dictionary<string, Tensor> { ["a"] = ones(4), ["b"] = ones(8) });
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^4]);
        var e = Assert.Throws<PargsException>(() => Safetensors.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("\"b\"", e.Message);

        File.WriteAllBytes(path, bytes[..20]); // ends inside the JSON header
        e = Assert.Throws<PargsException>(() => Safetensors.Load(path));
        Assert.Contains("shorter", e.Message);

        File.WriteAllBytes(path, bytes[..5]);
        Assert.Throws<PargsException>(() => Safetensors.Load(path));
    }

    [Theory]
    [InlineData("""{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}""", "needs 16")]        // size ≠ shape × dtype
    [InlineData("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", "outside the data section")]
    [InlineData("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", "overlaps")]
    [InlineData("""{"w":{"dtype":"Q7","shape":[4],"data_offsets":[0,16]}}""", "unsupported dtype \"Q7\"")]
    [InlineData("""{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}""", "shape")]
    public void Lying_headers_are_rejected(string header, string expected)
    {
        using var dir = new TempDir();
        string path = WriteRaw(dir.File("lie.safetensors"), header, new byte[16]);
        var e = Assert.Throws<PargsException>(() => Safetensors.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Contains("tensor \"", e.Message);
    }

    [Fact]
    public void Header_that_is_not_json_is_rejected()
    {
        using var dir = new TempDir();
        string path = WriteRaw(dir.File("junk.safetensors"), "{not json", new byte[4]);
        var e = Assert.Throws<PargsException>(() => Safetensors.Load(path));
        Assert.Contains("not valid JSON", e.Message);
        Assert.Contains(path, e.Message);
    }
}
