using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Weights;
using static TorchSharp.torch;

namespace Pargs.Tests.Models;

/// <summary>
/// <c>--kv-cache f16</c>: keys and values stored as float16 (rounded on write, widened on read) in the decode kernel
/// and the torch path, held to the float32 cache within float16's rounding, and greedy decoding of stories260K
/// unchanged token for token.
/// </summary>
public class KvCacheF16Tests
{
    static ModelConfig Config() => TinyModels.LlamaConfig(vocab: 67) with { HiddenSize = 64, IntermediateSize = 96, NumHeads = 4, NumKvHeads = 2 };

    static List<Tensor> DecodeWith(CausalLM model, KvCacheType type)
    {
        model.Backbone.KvCacheType = type;
        try { return StoredPrecisionTests.Decode(model); }
        finally { model.Backbone.KvCacheType = KvCacheType.F32; }
    }

    static float WorstRelative(List<Tensor> actual, List<Tensor> expected)
    {
        float worst = 0;
        for (int i = 0; i < expected.Count; i++)
            worst = Math.Max(worst, (actual[i].to(ScalarType.Float32) - expected[i]).abs().max().item<float>() / expected[i].abs().max().item<float>());
        return worst;
    }

    // Each key and value is rounded to 11 significant bits (relative error ≤ 2⁻¹¹ ≈ 4.9e-4); through attention and
    // two layers the logits of this random model move by 1.5e-3 of their largest value (measured); the bound is 3e-3. A
    // cache read as float32 bytes, a wrong slot or an unrounded copy would move them by their whole size, or not at all.
    const float HalfRounding = 3e-3f;

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(2, true)] // small forwards split over the threads (SerialWork 0)
    public void The_kernel_with_a_float16_cache_decodes_like_the_float32_cache_within_float16_rounding(int threads, bool splitSmallForwards)
    {
        using var model = TinyModels.RandomLM(Config(), seed: 12);
        var expected = DecodeWith(model, KvCacheType.F32);
        List<Tensor> actual;
        long before = CpuKernels.ForwardsOnThisThread;
        using (CpuThreads.Scoped(threads))
        using (LlamaDecodeKernelTests.SplitSmallForwards(splitSmallForwards))
            actual = DecodeWith(model, KvCacheType.F16);
        Assert.True(CpuKernels.ForwardsOnThisThread - before >= 6, "the decode kernel did not run");
        float worst = WorstRelative(actual, expected);
        Assert.True(worst <= HalfRounding, $"f16 cache: max relative |f16 − f32| = {worst}");
        Assert.True(worst > 0, "the float16 cache gave exactly the float32 results: nothing was rounded");
        // The last two outputs are layer 0's cached keys and values (read back widened). Layer 0's keys and values
        // depend on the tokens and positions only, not on attention: each must be its float32 value rounded to float16.
        for (int i = 2; i >= 1; i--)
        {
            var rounded = expected[^i].to(ScalarType.Float16).to(ScalarType.Float32);
            Assert.True(actual[^i].eq(rounded).all().item<bool>(), "layer 0's cache is not the float32 keys/values rounded to float16");
        }
    }

    [Fact]
    public void The_torch_path_and_the_kernel_agree_on_a_float16_cache()
    {
        using var model = TinyModels.RandomLM(Config(), seed: 13);
        var kernel = DecodeWith(model, KvCacheType.F16);
        List<Tensor> torchPath;
        using (CpuKernels.Suppress()) torchPath = DecodeWith(model, KvCacheType.F16);
        // Both attend over halves rounded the same way; float summation order (~1e-7) separates their layer-1 keys and
        // values, and one that sits on a float16 rounding boundary rounds one half-step (2⁻¹¹) apart: hence 1e-4, not
        // the float32 cache's 1e-5 (measured 4e-5). Reading the cache wrongly on either side costs O(1).
        float worst = WorstRelative(kernel, torchPath);
        Assert.True(worst <= 1e-4f, $"f16 cache: max relative |kernel − torch| = {worst}");
    }

    [Fact]
    public void A_float16_cache_holds_half_the_bytes()
    {
        var config = Config();
        Assert.Equal(KvCache.BytesPerSlot(config, KvCacheType.F32), 2 * KvCache.BytesPerSlot(config, KvCacheType.F16));
        using var model = TinyModels.RandomLM(config, seed: 14);
        using var _ = no_grad();
        long Allocated(KvCacheType type)
        {
            model.Backbone.KvCacheType = type;
            using var session = new BatchSession(model.Backbone, 2, initialCapacity: 8);
            session.Prefill([TinyModels.Tokens(5, config.VocabSize, 1), TinyModels.Tokens(3, config.VocabSize, 2)]);
            return session.Cache.AllocatedBytes;
        }
        long f32 = Allocated(KvCacheType.F32), f16 = Allocated(KvCacheType.F16);
        Assert.Equal(2L * config.NumLayers * 2 * config.KvDim * 8 * 4, f32); // keys and values × layers × 2 rows × kv width × 8 slots × 4 bytes
        Assert.Equal(f32 / 2, f16);
    }

    [Fact]
    public void Greedy_decoding_of_stories260K_is_unchanged_by_a_float16_cache()
    {
        using var lm = CausalLM.LoadForInference(TestPaths.Stories260KGguf);
        var options = new DecodingOptions { Method = new GreedyOptions(), MaxNewTokens = 64, StopAtEos = false, BatchSize = 2 };
        string[] prompts = ["Once upon a time", "The little dog"];
        var f32 = TextGenerator.Generate(lm, null, prompts, options);
        lm.Backbone.KvCacheType = KvCacheType.F16;
        var f16 = TextGenerator.Generate(lm, null, prompts, options);
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(f32[i].TokenIds, f16[i].TokenIds);
    }
}
