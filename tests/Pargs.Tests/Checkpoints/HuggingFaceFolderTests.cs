using System.Text.Json.Nodes;
using Pargs.Checkpoints;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Checkpoints;

public class HuggingFaceFolderTests
{
    internal static ModelConfig TinyLlama(bool tied = true) => new()
    {
        ModelType = "llama", VocabSize = 11, HiddenSize = 8, IntermediateSize = 12, NumLayers = 2, NumHeads = 4, NumKvHeads = 2,
        MaxPositions = 32, TieWordEmbeddings = tied, BosTokenId = 1, EosTokenId = 2,
    };

    internal static Dictionary<string, Tensor> RandomTensors(ModelConfig config, string architecture, int seed)
    {
        manual_seed(seed);
        return ExpectedTensors.For(config, architecture)
            .ToDictionary(e => e.Name, e => randn(e.Shape.Select(d => d < 0 ? 1 : d).ToArray()));
    }

    static void AssertSameTensors(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, t) in expected)
            Assert.True(t.shape.SequenceEqual(actual[name].shape) && t.eq(actual[name]).all().item<bool>(), name);
    }

    [Fact]
    public void Save_then_load_round_trips_config_tensors_and_generation_defaults()
    {
        using var dir = new TempDir();
        var config = TinyLlama(tied: false);
        var tensors = RandomTensors(config, "LlamaForCausalLM", 7);
        string model = dir.File("model");
        var generation = new GenerationDefaults(0.7, 40, 0.9, 64, [2, 5]);
        HuggingFaceFolder.Save(model, config, "LlamaForCausalLM", tensors, generation: generation);

        using var loaded = HuggingFaceFolder.Load(model);
        Assert.Equal(config, loaded.Config);
        Assert.Equal("LlamaForCausalLM", loaded.Architecture);
        Assert.Equal("hf-folder", loaded.Format);
        Assert.Equal(generation with { EosTokenIds = null }, loaded.Generation! with { EosTokenIds = null });
        Assert.Equal(new[] { 2, 5 }, loaded.Generation!.EosTokenIds);
        AssertSameTensors(tensors, loaded.Tensors);
    }

    [Fact]
    public void Save_replaces_an_existing_folder_and_leaves_no_temporaries()
    {
        using var dir = new TempDir();
        string model = dir.File("rm");
        var config = TinyLlama();
        HuggingFaceFolder.Save(model, config, "LlamaForCausalLM", RandomTensors(config, "LlamaForCausalLM", 1));
        var second = RandomTensors(config, "LlamaForSequenceClassification", 2);
        HuggingFaceFolder.Save(model, config, "LlamaForSequenceClassification", second,
            extraConfig: new Dictionary<string, JsonNode?> { ["num_labels"] = 1 });

        Assert.Equal(new[] { model }, Directory.GetDirectories(dir.Path));
        using var loaded = HuggingFaceFolder.Load(model);
        Assert.Equal("LlamaForSequenceClassification", loaded.Architecture);
        Assert.Equal(1, JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!["num_labels"]!.GetValue<int>());
        AssertSameTensors(second, loaded.Tensors);
    }

    [Fact]
    public void Sharded_index_loads_every_shard()
    {
        using var dir = new TempDir();
        var config = TinyLlama();
        var tensors = RandomTensors(config, "LlamaForCausalLM", 3);
        File.WriteAllText(dir.File("config.json"), config.ToHuggingFaceJson("LlamaForCausalLM").ToJsonString());
        var names = tensors.Keys.Order().ToList();
        var first = names.Take(names.Count / 2).ToDictionary(n => n, n => tensors[n]);
        var rest = names.Skip(names.Count / 2).ToDictionary(n => n, n => tensors[n]);
        Safetensors.Save(dir.File("model-00001-of-00002.safetensors"), first);
        Safetensors.Save(dir.File("model-00002-of-00002.safetensors"), rest);
        var map = new JsonObject();
        foreach (var n in first.Keys) map[n] = "model-00001-of-00002.safetensors";
        foreach (var n in rest.Keys) map[n] = "model-00002-of-00002.safetensors";
        File.WriteAllText(dir.File("model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());

        using var loaded = HuggingFaceFolder.Load(dir.Path);
        AssertSameTensors(tensors, loaded.Tensors);

        // An index that promises a tensor its shard does not hold is an error naming it.
        map["model.extra.weight"] = "model-00002-of-00002.safetensors";
        File.WriteAllText(dir.File("model.safetensors.index.json"), new JsonObject { ["weight_map"] = map.DeepClone() }.ToJsonString());
        var e = Assert.Throws<PargsException>(() => HuggingFaceFolder.Load(dir.Path));
        Assert.Contains("model.extra.weight", e.Message);
    }

    [Fact]
    public void Gpt2_hub_names_gain_the_transformer_prefix_and_a_tied_lm_head()
    {
        using var dir = new TempDir();
        var config = new ModelConfig
        {
            ModelType = "gpt2", VocabSize = 10, HiddenSize = 8, IntermediateSize = 32, NumLayers = 1,
            NumHeads = 2, NumKvHeads = 2, MaxPositions = 16, TieWordEmbeddings = true,
        };
        var tensors = RandomTensors(config, "GPT2LMHeadModel", 4);
        // As stored on the Hub: no "transformer." prefix, plus the causal-mask buffer.
        var hub = tensors.ToDictionary(kv => kv.Key["transformer.".Length..], kv => kv.Value);
        hub["h.0.attn.bias"] = ones(1, 1, 16, 16);
        File.WriteAllText(dir.File("config.json"), config.ToHuggingFaceJson("GPT2LMHeadModel").ToJsonString());
        Safetensors.Save(dir.File("model.safetensors"), hub);

        using var loaded = HuggingFaceFolder.Load(dir.Path);
        Assert.Contains("transformer.h.0.attn.c_attn.weight", loaded.Tensors.Keys);
        Assert.DoesNotContain("transformer.h.0.attn.bias", loaded.Tensors.Keys);
        Assert.DoesNotContain("h.0.attn.bias", loaded.Tensors.Keys);
        Assert.True(loaded.Tensors["lm_head.weight"].eq(tensors["transformer.wte.weight"]).all().item<bool>());
        Assert.Equal(tensors.Count + 1, loaded.Tensors.Count);
    }

    [Fact]
    public void Unknown_architecture_or_model_type_in_config_json_is_rejected()
    {
        using var dir = new TempDir();
        var config = TinyLlama();
        Safetensors.Save(dir.File("model.safetensors"), RandomTensors(config, "LlamaForCausalLM", 5));
        File.WriteAllText(dir.File("config.json"), config.ToHuggingFaceJson("BertForMaskedLM").ToJsonString());
        var e = Assert.Throws<PargsException>(() => HuggingFaceFolder.Load(dir.Path));
        Assert.Contains("BertForMaskedLM", e.Message);
        Assert.Contains("config.json", e.Message);

        var json = config.ToHuggingFaceJson("LlamaForCausalLM");
        json["model_type"] = "bert";
        File.WriteAllText(dir.File("config.json"), json.ToJsonString());
        e = Assert.Throws<PargsException>(() => HuggingFaceFolder.Load(dir.Path));
        Assert.Contains("bert", e.Message);
    }

    [Fact]
    public void Missing_config_weights_or_tensor_are_clear_errors()
    {
        using var dir = new TempDir();
        var config = TinyLlama();
        var e = Assert.Throws<PargsException>(() => HuggingFaceFolder.Load(dir.Path));
        Assert.Contains("config.json", e.Message);

        File.WriteAllText(dir.File("config.json"), config.ToHuggingFaceJson("LlamaForCausalLM").ToJsonString());
        e = Assert.Throws<PargsException>(() => HuggingFaceFolder.Load(dir.Path));
        Assert.Contains("model.safetensors", e.Message);

        var tensors = RandomTensors(config, "LlamaForCausalLM", 6);
        tensors.Remove("model.layers.1.mlp.up_proj.weight");
        Safetensors.Save(dir.File("model.safetensors"), tensors);
        e = Assert.Throws<PargsException>(() => HuggingFaceFolder.Load(dir.Path));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", e.Message);

        tensors["model.layers.1.mlp.up_proj.weight"] = zeros(3, 3);
        Safetensors.Save(dir.File("model.safetensors"), tensors);
        e = Assert.Throws<PargsException>(() => HuggingFaceFolder.Load(dir.Path));
        Assert.Contains("shape", e.Message);
    }
}
