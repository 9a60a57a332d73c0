using System.Text.Json;
using Pargs.Checkpoints;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// A model saved as a Hugging Face folder (config.json + model.safetensors) and loaded back through the same path
/// users take (CheckpointLoader → CausalLM.FromCheckpoint) must give bit-identical logits: F32 storage loses nothing,
/// so any difference means a config field or a tensor name/layout was dropped or mangled on the way.
/// </summary>
public class HuggingFaceRoundTripTests
{
    public static TheoryData<string> Families => new() { "llama", "qwen2", "gpt2" };

    static ModelConfig ConfigFor(string family) => family switch
    {
        "llama" => TinyModels.LlamaConfig(),
        "qwen2" => TinyModels.Qwen2Config(),
        "gpt2" => TinyModels.Gpt2Config(),
        _ => throw new ArgumentException(family),
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Saved_folder_loads_back_to_identical_logits(string family)
    {
        using var dir = new TempDir();
        var config = ConfigFor(family);
        using var original = TinyModels.RandomLM(config, seed: 77);
        string folder = dir.File(family);
        HuggingFaceFolder.Save(folder, config, original.Architecture, original.StateDictForSaving());

        using var contents = CheckpointLoader.Load(folder);
        Assert.Equal(config, contents.Config);
        Assert.Equal(original.Architecture, contents.Architecture);
        using var loaded = CausalLM.FromCheckpoint(contents);

        // Two rows of different lengths so the padding mask and per-row positions are part of the comparison.
        var ids = tensor(TinyModels.Tokens(2 * 9, config.VocabSize, seed: 5).Select(i => (long)i).ToArray()).reshape(2, 9);
        var valid = ones(2, 9, dtype: ScalarType.Bool);
        valid[1, TensorIndex.Slice(6)] = false;
        using var _ = no_grad();
        var expected = original.Logits(ids, valid);
        var actual = loaded.Logits(ids, valid);
        Assert.Equal(expected.shape, actual.shape);
        Assert.True(expected.eq(actual).all().item<bool>(), $"{family}: max |Δlogit| = {(expected - actual).abs().max().item<float>()}");
    }

    /// <summary>
    /// Hugging Face checkpoints are mostly stored in F16 or BF16. Weights first rounded to that precision are exactly
    /// representable, so the upcast-on-load model must still give bit-identical logits.
    /// </summary>
    [Theory]
    [InlineData("llama", "BF16")]
    [InlineData("qwen2", "F16")]
    [InlineData("gpt2", "BF16")]
    public void Half_precision_safetensors_load_to_identical_logits(string family, string dtype)
    {
        using var dir = new TempDir();
        var config = ConfigFor(family);
        using var original = TinyModels.RandomLM(config, seed: 91);
        var half = dtype == "F16" ? ScalarType.Float16 : ScalarType.BFloat16;
        using (no_grad())
            foreach (var p in original.parameters()) p.copy_(p.to(half).to(ScalarType.Float32));

        string folder = dir.File(family);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, HuggingFaceFolder.ConfigFile), config.ToHuggingFaceJson(original.Architecture).ToJsonString());
        WriteHalfSafetensors(Path.Combine(folder, HuggingFaceFolder.WeightsFile), original.StateDictForSaving(), dtype);

        using var contents = CheckpointLoader.Load(folder);
        using var loaded = CausalLM.FromCheckpoint(contents);
        var ids = tensor(TinyModels.Tokens(12, config.VocabSize, seed: 8).Select(i => (long)i).ToArray()).reshape(2, 6);
        using var _ = no_grad();
        var expected = original.Logits(ids);
        var actual = loaded.Logits(ids);
        Assert.True(expected.eq(actual).all().item<bool>(), $"{family}/{dtype}: max |Δlogit| = {(expected - actual).abs().max().item<float>()}");
    }

    /// <summary>A safetensors writer for F16/BF16 (the library only writes F32), independent of the reader.</summary>
    static void WriteHalfSafetensors(string path, IReadOnlyDictionary<string, Tensor> tensors, string dtype)
    {
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>();
        var data = new MemoryStream();
        foreach (var name in names)
        {
            var t = tensors[name].detach().contiguous();
            long begin = data.Length;
            foreach (float f in t.data<float>().ToArray())
            {
                ushort bits = dtype == "F16"
                    ? BitConverter.HalfToUInt16Bits((Half)f)                  // exact: f was rounded to F16
                    : (ushort)(BitConverter.SingleToUInt32Bits(f) >> 16);     // exact: f was rounded to BF16
                data.Write(BitConverter.GetBytes(bits));
            }
            header[name] = new { dtype, shape = t.shape, data_offsets = new[] { begin, data.Length } };
        }
        var headerBytes = JsonSerializer.SerializeToUtf8Bytes(header);
        using var file = new BinaryWriter(File.Create(path));
        file.Write((ulong)headerBytes.Length);
        file.Write(headerBytes);
        file.Write(data.ToArray());
    }

    [Fact]
    public void Tied_models_do_not_store_lm_head_and_untied_ones_do()
    {
        using var dir = new TempDir();
        foreach (var (config, expectHead) in new[] { (TinyModels.LlamaConfig(), true), (TinyModels.Qwen2Config(), false), (TinyModels.Gpt2Config(), false) })
        {
            using var model = TinyModels.RandomLM(config, seed: 3);
            string folder = dir.File(config.ModelType + expectHead);
            HuggingFaceFolder.Save(folder, config, model.Architecture, model.StateDictForSaving());
            var names = Safetensors.ReadHeader(Path.Combine(folder, HuggingFaceFolder.WeightsFile)).Entries.Select(e => e.Name).ToHashSet();
            Assert.Equal(expectHead, names.Contains("lm_head.weight"));
            if (config.AttentionBias) Assert.Contains("model.layers.0.self_attn.q_proj.bias", names);
        }
    }
}
