using Pargs.Models;
using Pargs.Checkpoints;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

/// <summary>The shipped stories260K model in its two formats: both must load to the very same HF tensors.</summary>
public class Stories260KCheckpointTests
{
    static void AssertStoriesConfig(CheckpointContents c)
    {
        Assert.Equal(64, c.Config.HiddenSize);
        Assert.Equal(5, c.Config.NumLayers);
        Assert.Equal(8, c.Config.NumHeads);
        Assert.Equal(4, c.Config.NumKvHeads);
        Assert.Equal(512, c.Config.VocabSize);
        Assert.Equal(172, c.Config.IntermediateSize);
        Assert.Equal(512, c.Config.MaxPositions);
        Assert.Equal(10000.0, c.Config.RopeTheta);
        Assert.Equal(1e-5, c.Config.NormEps, 1e-9);
        Assert.True(c.Config.TieWordEmbeddings);
        Assert.Equal((1, 2), (c.Config.BosTokenId, c.Config.EosTokenId));
        Assert.Equal("LlamaForCausalLM", c.Architecture);
    }

    [Fact]
    public void Gguf_v1_and_llama2c_bin_load_to_identical_tensors()
    {
        using var gguf = GgufCheckpoint.Load(TestPaths.Stories260KGguf);
        using var bin = Llama2cCheckpoint.Load(TestPaths.Stories260KBin);
        Assert.Equal(1u, GgufFile.Read(TestPaths.Stories260KGguf).Version);
        AssertStoriesConfig(gguf);
        AssertStoriesConfig(bin);
        Assert.Equal(gguf.Config with { PadTokenId = null }, bin.Config); // only the GGUF names a pad token
        Assert.Equal("gguf", gguf.Format);
        Assert.Equal("llama2c", bin.Format);

        Assert.Equal(2 + 5 * 9, gguf.Tensors.Count); // embed, norm, 9 per layer; no lm_head (tied)
        Assert.Equal(gguf.Tensors.Keys.Order(), bin.Tensors.Keys.Order());
        foreach (var (name, t) in gguf.Tensors)
        {
            Assert.Equal(t.shape, bin.Tensors[name].shape);
            Assert.True(t.eq(bin.Tensors[name]).all().item<bool>(), name);
        }
        Assert.Equal(new long[] { 32, 64 }, gguf.Tensors["model.layers.0.self_attn.k_proj.weight"].shape);
        Assert.Equal(new long[] { 172, 64 }, gguf.Tensors["model.layers.4.mlp.up_proj.weight"].shape);
        // Real weights, not zeros: RMSNorm gains of a trained model sit around 1, embeddings are spread.
        Assert.True(gguf.Tensors["model.embed_tokens.weight"].std().item<float>() > 0.01f);
    }

    [Fact]
    public void Gguf_vocabulary_is_exposed()
    {
        var (pieces, scores, types, bos, eos) = GgufCheckpoint.ReadVocabulary(GgufFile.Read(TestPaths.Stories260KGguf));
        Assert.Equal(512, pieces.Length);
        Assert.Equal(512, scores.Length);
        Assert.Equal("<s>", pieces[1]);
        Assert.Equal("</s>", pieces[2]);
        Assert.Equal("<0x0A>", pieces[3 + 10]); // byte tokens follow the three specials
        Assert.Equal((1, 2), (bos, eos));
        Assert.NotNull(types);
        Assert.Equal(512, types!.Length);
    }

    [Fact]
    public void Llama2c_file_of_the_wrong_size_is_rejected()
    {
        using var dir = new TempDir();
        var bytes = File.ReadAllBytes(TestPaths.Stories260KBin);
        string path = dir.File("short.bin");
        File.WriteAllBytes(path, bytes[..^4]);
        var e = Assert.Throws<PargsException>(() => Llama2cCheckpoint.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);

        path = dir.File("long.bin");
        File.WriteAllBytes(path, [.. bytes, 0, 0, 0, 0]);
        e = Assert.Throws<PargsException>(() => Llama2cCheckpoint.Load(path));
        Assert.Contains(path, e.Message);

        path = dir.File("tiny.bin");
        File.WriteAllBytes(path, bytes[..10]);
        Assert.Throws<PargsException>(() => Llama2cCheckpoint.Load(path));
    }

    [Fact]
    public void Meta_to_hf_permute_moves_interleaved_pairs_into_halves()
    {
        // 2 heads of size 4, input width 3: row (head h, pair i, component c) moves to h*4 + c*2 + i.
        using var w = HeldScalars.Arange(8 * 3, ScalarType.Float32).reshape(8, 3);
        using var hf = MetaRotaryLayout.ToHuggingFace(w, heads: 2);
        int[] sourceRowOf = [0, 2, 1, 3, 4, 6, 5, 7];
        for (int row = 0; row < 8; row++)
            Assert.Equal(w[sourceRowOf[row]].data<float>().ToArray(), hf[row].data<float>().ToArray());
    }

    [Fact]
    public void CheckpointLoader_dispatches_on_the_path()
    {
        using var dir = new TempDir();
        using (var gguf = CheckpointLoader.Load(TestPaths.Stories260KGguf)) Assert.Equal("gguf", gguf.Format);
        using (var bin = CheckpointLoader.Load(TestPaths.Stories260KBin))
        {
            Assert.Equal("llama2c", bin.Format);
            HuggingFaceFolder.Save(dir.File("hf"), bin.Config, "LlamaForCausalLM", bin.Tensors);
        }
        using (var hf = CheckpointLoader.Load(dir.File("hf"))) Assert.Equal("hf-folder", hf.Format);
        using (var hf = CheckpointLoader.Load(Path.Combine(dir.File("hf"), "config.json"))) Assert.Equal(5, hf.Config.NumLayers);

        File.WriteAllText(dir.File("model.onnx"), "x");
        var e = Assert.Throws<PargsException>(() => CheckpointLoader.Load(dir.File("model.onnx")));
        Assert.Contains(".gguf", e.Message);
        Assert.Contains("llama2.c", e.Message);
        e = Assert.Throws<PargsException>(() => CheckpointLoader.Load(dir.File("missing.gguf")));
        Assert.Contains("missing.gguf", e.Message);
    }
}

/// <summary>End to end: the converted weights in Pargs' HF-layout Llama reproduce llama2.c run.c's greedy output.</summary>
public class Stories260KGreedyTests
{
    [Theory]
    [InlineData("gguf")]
    [InlineData("bin")]
    public void Greedy_continuation_matches_the_llama2c_reference(string format)
    {
        using var contents = CheckpointLoader.Load(format == "gguf" ? TestPaths.Stories260KGguf : TestPaths.Stories260KBin);
        using var model = Pargs.Models.CausalLM.FromCheckpoint(contents);
        // data/models/stories260K/SOURCE.md: BOS " Once" " upon" " a" " time", then these greedy ids.
        var ids = new List<long> { 1, 403, 407, 261, 378 };
        long[] expected = [432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426];
        using (no_grad())
            for (int step = 0; step < expected.Length; step++)
            {
                using var scope = NewDisposeScope();
                var logits = model.Logits(tensor(ids.ToArray()).unsqueeze(0));
                ids.Add(logits[0, -1].argmax().item<long>());
            }
        Assert.Equal(expected, ids.Skip(5).ToArray());
    }
}
