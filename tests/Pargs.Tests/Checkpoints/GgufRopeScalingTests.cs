using Pargs.Checkpoints;

namespace Pargs.Tests.Checkpoints;

/// <summary>llama.cpp's rope scaling metadata is read (linear) or refused, never ignored.</summary>
public class GgufRopeScalingTests
{
    static GgufWriter Tiny(Func<GgufWriter, GgufWriter> metadata)
    {
        float[] Seq(int n) => Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        return metadata(GgufTests.TinyLlamaGguf())
            .TensorF32("output_norm.weight", [4], Seq(4)).TensorF32("blk.0.attn_norm.weight", [4], Seq(4))
            .TensorF32("blk.0.ffn_norm.weight", [4], Seq(4)).TensorF32("blk.0.attn_q.weight", [4, 4], Seq(16))
            .TensorF32("blk.0.attn_k.weight", [4, 2], Seq(8)).TensorF32("blk.0.attn_v.weight", [4, 2], Seq(8))
            .TensorF32("blk.0.attn_output.weight", [4, 4], Seq(16)).TensorF32("blk.0.ffn_gate.weight", [4, 6], Seq(24))
            .TensorF32("blk.0.ffn_up.weight", [4, 6], Seq(24)).TensorF32("blk.0.ffn_down.weight", [6, 4], Seq(24));
    }

    [Fact]
    public void Linear_scaling_is_read_and_other_types_are_refused()
    {
        using var dir = new TempDir();
        string linear = Tiny(w => w.Set("llama.rope.scaling.type", GgufValue.String("linear")).Set("llama.rope.scaling.factor", GgufValue.F32(4f))).SaveTo(dir.File("linear.gguf"));
        using (var c = GgufCheckpoint.Load(linear))
            Assert.Equal(new Pargs.Models.RopeScaling { Type = "linear", Factor = 4 }, c.Config.RopeScaling);
        string none = Tiny(w => w.Set("llama.rope.scaling.type", GgufValue.String("none"))).SaveTo(dir.File("none.gguf"));
        using (var c = GgufCheckpoint.Load(none))
            Assert.Null(c.Config.RopeScaling);
        string yarn = Tiny(w => w.Set("llama.rope.scaling.type", GgufValue.String("yarn")).Set("llama.rope.scaling.factor", GgufValue.F32(4f))).SaveTo(dir.File("yarn.gguf"));
        var e = Assert.Throws<PargsException>(() => GgufCheckpoint.Load(yarn));
        Assert.Contains("llama.rope.scaling.type = \"yarn\"", e.Message);
    }
}
