using System.Text.Json.Nodes;
using Pargs.Models;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Tests.Models.Families;

/// <summary>
/// The CPU decode kernel of the families that decode on it besides Llama's own (Phi-3: fused qkv_proj and
/// gate_up_proj read as row ranges, partial rotary, LongRoPE switching to its long tables mid-decode, sliding window;
/// GPT-NeoX: LayerNorm with biases, parallel or sequential residual, per-head fused query_key_value, GELU MLP with biases)
/// against the family's torch forward: a ragged prefill, steps, sibling candidates and a commit — logits and cache
/// contents of every stage within 1e-5 (<see cref="LlamaDecodeKernelTests.Decode"/>), on one and two threads.
/// </summary>
public class FamilyDecodeKernelTests
{
    public static TheoryData<string, int> Cases => new()
    {
        { "phi3-partial-longrope-window", 1 }, { "phi3-partial-longrope-window", 2 }, { "phi3-full-rotary", 1 },
        { "gpt_neox-parallel", 1 }, { "gpt_neox-parallel", 2 }, { "gpt_neox-sequential-tanh", 1 }, { "gpt_neox-nobias", 1 },
    };

    static ModelConfig Config(string name)
    {
        var json = name switch
        {
            // head_dim 8, rotary on 4 of them; LongRoPE's long tables from position 8 on (the 7-token prompt plus its
            // steps cross it); a 6-token window shorter than the longest prompt; GQA 6/2.
            "phi3-partial-longrope-window" => new JsonObject
            {
                ["model_type"] = "phi3", ["vocab_size"] = 40, ["hidden_size"] = 48, ["intermediate_size"] = 40,
                ["num_hidden_layers"] = 2, ["num_attention_heads"] = 6, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 64,
                ["original_max_position_embeddings"] = 8, ["partial_rotary_factor"] = 0.5, ["sliding_window"] = 6,
                ["rope_scaling"] = new JsonObject { ["type"] = "longrope", ["short_factor"] = new JsonArray(1.0, 1.5), ["long_factor"] = new JsonArray(2.0, 5.0) },
                ["rms_norm_eps"] = 1e-5, ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 2,
            },
            // GPT-NeoX: rotary on half of each 12-wide head, LayerNorm biases, per-head fused q|k|v, exact GELU (parallel
            // residual), tanh GELU (sequential), or no attention biases.
            "gpt_neox-parallel" or "gpt_neox-sequential-tanh" or "gpt_neox-nobias" => new JsonObject
            {
                ["model_type"] = "gpt_neox", ["vocab_size"] = 40, ["hidden_size"] = 48, ["intermediate_size"] = 72,
                ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["max_position_embeddings"] = 64, ["layer_norm_eps"] = 1e-5,
                ["rotary_pct"] = 0.5, ["use_parallel_residual"] = name != "gpt_neox-sequential-tanh",
                ["hidden_act"] = name == "gpt_neox-sequential-tanh" ? "gelu_new" : "gelu", ["attention_bias"] = name != "gpt_neox-nobias",
                ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
            },
            _ => new JsonObject
            {
                ["model_type"] = "phi3", ["vocab_size"] = 40, ["hidden_size"] = 36, ["intermediate_size"] = 53,
                ["num_hidden_layers"] = 2, ["num_attention_heads"] = 3, ["num_key_value_heads"] = 3, ["max_position_embeddings"] = 64,
                ["rms_norm_eps"] = 1e-5, ["tie_word_embeddings"] = true, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["pad_token_id"] = 2,
                ["sliding_window"] = null,
            },
        };
        return ModelConfig.FromHuggingFaceJson(json, "config.json");
    }

    [Theory, MemberData(nameof(Cases))]
    public void Kernel_decoding_matches_the_family_torch_forward(string name, int threads)
    {
        using var model = TinyModels.RandomLM(Config(name), seed: 31);
        var (reference, fast, kernelForwards) = LlamaDecodeKernelTests.DecodeBothWays(model, threads);
        Assert.True(kernelForwards >= 7, "the decode kernel did not run every forward");
        Assert.Equal(reference.Count, fast.Count);
        for (int i = 0; i < reference.Count; i++)
        {
            float diff = (reference[i] - fast[i]).abs().max().item<float>();
            Assert.True(diff <= 1e-5f, $"{name}, stage {i}: max |torch − kernel| = {diff}");
        }
    }
}
