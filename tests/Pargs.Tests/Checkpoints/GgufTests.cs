using Pargs.Checkpoints;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

public class GgufTests
{
    static GgufWriter WithEveryMetadataType(uint version) => new GgufWriter(version)
        .Set("u8", GgufValue.U8(200))
        .Set("i8", GgufValue.I8(-5))
        .Set("u16", GgufValue.U16(60000))
        .Set("i16", GgufValue.I16(-300))
        .Set("u32", GgufValue.U32(4_000_000_000))
        .Set("i32", GgufValue.I32(-7))
        .Set("f32", GgufValue.F32(0.25f))
        .Set("bool", GgufValue.Bool(true))
        .Set("str", GgufValue.String("héllo"))
        .Set("u64", GgufValue.U64(123456789012UL))
        .Set("i64", GgufValue.I64(-123456789012L))
        .Set("f64", GgufValue.F64(2.5))
        .Set("strs", GgufValue.Strings(["a", "", "<0x0A>"]))
        .Set("floats", GgufValue.Floats([1f, -2f]))
        .Set("ints", GgufValue.Ints([3, -4, 5]));

    static byte[] F32Bytes(float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    [Theory]
    [InlineData(1u)]
    [InlineData(2u)]
    [InlineData(3u)]
    public void Reads_metadata_of_every_type_and_tensors(uint version)
    {
        using var dir = new TempDir();
        float[] matrix = [1, 2, 3, 4, 5, 6];
        float[] q8Values = Enumerable.Range(0, 32).Select(i => (i - 16) * 0.5f).ToArray();
        // Q8_0 block: f16 scale 0.5, then the values / scale as signed bytes.
        byte[] q8 = [.. BitConverter.GetBytes((Half)0.5f), .. q8Values.Select(v => (byte)(sbyte)(v / 0.5f))];
        string path = WithEveryMetadataType(version)
            .AddTensor("m", [2, 3], GgmlType.F32, F32Bytes(matrix)) // 2 rows of 3 (GGUF's ne = [3, 2])
            .AddTensor("h", [2], GgmlType.F16, [.. BitConverter.GetBytes((Half)1.5f), .. BitConverter.GetBytes((Half)(-0.25f))])
            .AddTensor("q", [32], GgmlType.Q8_0, q8)
            .SaveTo(dir.File($"v{version}.gguf"));

        var gguf = GgufFile.Read(path);
        Assert.Equal(version, gguf.Version);
        var m = gguf.Metadata;
        Assert.Equal(200L, m["u8"]);
        Assert.Equal(-5L, m["i8"]);
        Assert.Equal(60000L, m["u16"]);
        Assert.Equal(-300L, m["i16"]);
        Assert.Equal(4_000_000_000L, m["u32"]);
        Assert.Equal(-7L, m["i32"]);
        Assert.Equal(0.25, m["f32"]);
        Assert.Equal(true, m["bool"]);
        Assert.Equal("héllo", m["str"]);
        Assert.Equal(123456789012L, m["u64"]);
        Assert.Equal(-123456789012L, m["i64"]);
        Assert.Equal(2.5, m["f64"]);
        Assert.Equal(new[] { "a", "", "<0x0A>" }, m["strs"]);
        Assert.Equal(new[] { 1f, -2f }, m["floats"]);
        Assert.Equal(new[] { 3, -4, 5 }, m["ints"]);

        Assert.Equal(new long[] { 2, 3 }, gguf.Find("m")!.Shape);
        using var t = gguf.ReadTensor("m");
        Assert.Equal(new long[] { 2, 3 }, t.shape);
        Assert.Equal(matrix, t.data<float>().ToArray());
        using var h = gguf.ReadTensor("h");
        Assert.Equal(new[] { 1.5f, -0.25f }, h.data<float>().ToArray());
        using var q = gguf.ReadTensor("q");
        Assert.Equal(q8Values, q.data<float>().ToArray());
    }

    [Fact]
    public void Bad_magic_and_unsupported_version_are_rejected()
    {
        using var dir = new TempDir();
        string path = dir.File("bad.gguf");
        var bytes = new GgufWriter(3).ToArray();
        BitConverter.GetBytes(0x4C4D4747u).CopyTo(bytes, 0); // "GGML"
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<PargsException>(() => GgufFile.Read(path));
        Assert.Contains("not a GGUF file", e.Message);
        Assert.Contains(path, e.Message);

        path = dir.File("v4.gguf");
        bytes = new GgufWriter(3).ToArray();
        BitConverter.GetBytes(4u).CopyTo(bytes, 4); // the writer writes only versions it knows
        File.WriteAllBytes(path, bytes);
        e = Assert.Throws<PargsException>(() => GgufFile.Read(path));
        Assert.Contains("version 4", e.Message);
    }

    [Fact]
    public void Unsupported_tensor_type_names_the_tensor()
    {
        using var dir = new TempDir();
        string path = TinyLlamaGguf()
            .AddTensor("blk.0.ffn_up.weight", [1, 256], GgmlType.Q4_1, new byte[160]) // K-quants are read since issue 16; Q4_1 is not
            .SaveTo(dir.File("q4_1.gguf"));
        var e = Assert.Throws<PargsException>(() => GgufCheckpoint.Load(path));
        Assert.Contains("blk.0.ffn_up.weight", e.Message);
        Assert.Contains("Q4_1", e.Message);
    }

    [Fact]
    public void Truncated_file_is_rejected_with_its_name()
    {
        using var dir = new TempDir();
        var bytes = WithEveryMetadataType(3).AddTensor("m", [64], GgmlType.F32, new byte[256]).ToArray();
        string path = dir.File("cut.gguf");
        File.WriteAllBytes(path, bytes[..^200]); // inside the tensor data
        var e = Assert.Throws<PargsException>(() => GgufFile.Read(path));
        Assert.Contains("\"m\"", e.Message);
        Assert.Contains(path, e.Message);

        File.WriteAllBytes(path, bytes[..60]); // inside the metadata
        e = Assert.Throws<PargsException>(() => GgufFile.Read(path));
        Assert.Contains(path, e.Message);
    }

    /// <summary>llama metadata for a 1-layer model with hidden 4, 2 heads, 1 kv head, ff 6, vocab 3 (tensors added by callers).</summary>
    internal static GgufWriter TinyLlamaGguf() => new GgufWriter()
        .Set("general.architecture", GgufValue.String("llama"))
        .Set("llama.embedding_length", GgufValue.U32(4))
        .Set("llama.feed_forward_length", GgufValue.U32(6))
        .Set("llama.block_count", GgufValue.U32(1))
        .Set("llama.attention.head_count", GgufValue.U32(2))
        .Set("llama.attention.head_count_kv", GgufValue.U32(1))
        .Set("llama.attention.layer_norm_rms_epsilon", GgufValue.F32(1e-6f))
        .Set("tokenizer.ggml.tokens", GgufValue.Strings(["<unk>", "<s>", "</s>"]))
        .Set("tokenizer.ggml.bos_token_id", GgufValue.U32(1))
        .Set("tokenizer.ggml.eos_token_id", GgufValue.U32(2))
        .TensorF32("token_embd.weight", [4, 3], Enumerable.Range(0, 12).Select(i => (float)i).ToArray());

    static float[] Seq(int n, int start) => Enumerable.Range(start, n).Select(i => (float)i).ToArray();

    static GgufWriter LayerTensors(GgufWriter w) => w
            .TensorF32("output_norm.weight", [4], Seq(4, 0))
            .TensorF32("blk.0.attn_norm.weight", [4], Seq(4, 0))
            .TensorF32("blk.0.ffn_norm.weight", [4], Seq(4, 0))
            .TensorF32("blk.0.attn_q.weight", [4, 4], Seq(16, 0))
            .TensorF32("blk.0.attn_k.weight", [4, 2], Seq(8, 100))
            .TensorF32("blk.0.attn_v.weight", [4, 2], Seq(8, 0))
            .TensorF32("blk.0.attn_output.weight", [4, 4], Seq(16, 0))
            .TensorF32("blk.0.ffn_gate.weight", [4, 6], Seq(24, 0))
            .TensorF32("blk.0.ffn_up.weight", [4, 6], Seq(24, 0))
            .TensorF32("blk.0.ffn_down.weight", [6, 4], Seq(24, 0));

    [Fact]
    public void Tiny_llama_gguf_maps_names_and_config()
    {
        using var dir = new TempDir();
        using var c = GgufCheckpoint.Load(LayerTensors(TinyLlamaGguf()).SaveTo(dir.File("tiny.gguf")));

        Assert.Equal(4, c.Config.HiddenSize);
        Assert.Equal(6, c.Config.IntermediateSize);
        Assert.Equal(2, c.Config.NumHeads);
        Assert.Equal(1, c.Config.NumKvHeads);
        Assert.Equal(3, c.Config.VocabSize);
        Assert.Equal(1e-6, c.Config.NormEps, 1e-12);
        Assert.True(c.Config.TieWordEmbeddings);
        Assert.Equal((1, 2), (c.Config.BosTokenId, c.Config.EosTokenId));
        Assert.DoesNotContain("lm_head.weight", c.Tensors.Keys);
        Assert.Equal(new long[] { 6, 4 }, c.Tensors["model.layers.0.mlp.gate_proj.weight"].shape);
        // Head size 2 is a single rotary pair per head, so the Meta→HF permute leaves rows in place here;
        // Stories260KCheckpointTests checks the permute itself and end to end against llama2.c.
        Assert.Equal(Seq(16, 0), c.Tensors["model.layers.0.self_attn.q_proj.weight"].data<float>().ToArray());
        Assert.Equal(Seq(8, 100), c.Tensors["model.layers.0.self_attn.k_proj.weight"].data<float>().ToArray());
    }

    [Fact]
    public void Output_weight_is_kept_untied_unless_it_copies_the_embedding()
    {
        using var dir = new TempDir();
        string path = LayerTensors(TinyLlamaGguf()).TensorF32("output.weight", [4, 3], Seq(12, 50)).SaveTo(dir.File("untied.gguf"));
        using (var c = GgufCheckpoint.Load(path))
        {
            Assert.False(c.Config.TieWordEmbeddings);
            Assert.Equal(Seq(12, 50), c.Tensors["lm_head.weight"].data<float>().ToArray());
        }
        path = LayerTensors(TinyLlamaGguf()).TensorF32("output.weight", [4, 3], Seq(12, 0)).SaveTo(dir.File("copy.gguf"));
        using (var c = GgufCheckpoint.Load(path))
        {
            Assert.True(c.Config.TieWordEmbeddings);
            Assert.DoesNotContain("lm_head.weight", c.Tensors.Keys);
        }
    }
}

/// <summary>The test files' shorthands over the library writer: ne innermost first as GGUF lists it, and save-and-return-path.</summary>
static class GgufWriterTestExtensions
{
    public static GgufWriter TensorF32(this GgufWriter w, string name, long[] ne, float[] values) =>
        w.AddTensor(name, ne.Reverse().ToArray(), GgmlType.F32, values.SelectMany(BitConverter.GetBytes).ToArray());

    public static string SaveTo(this GgufWriter w, string path)
    {
        w.Save(path);
        return path;
    }
}
