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
