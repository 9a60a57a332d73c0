using Pargs.Decoding;
using Pargs.Tests.Cli;

namespace Pargs.Tests.Hostile;

/// <summary>Requests that must be refused before any work or output (issue 13), through the real `pargs` process.</summary>
public class HostileCliTests : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static string Gguf => TestPaths.Stories260KGguf;

    [Fact]
    public void Best_of_n_with_a_million_samples_is_refused_from_the_request_before_decoding()
    {
        var lm = Pargs.Checkpoints.CheckpointLoader.Load(Gguf);
        var options = new DecodingOptions { Method = new Pargs.Decoding.Methods.BestOfNOptions { N = 1_000_000 }, MaxNewTokens = 64 };
        // stories260K: 5 layers × 32 kv dims → 1.3 KB of cache per token; a million 70-token samples are ~90 GB of cache alone.
        var refused = Assert.Throws<PargsException>(() => DecodingMemory.Check(lm.Config, lm.Config, options, prompts: 1, longestPrompt: 6, availableBytes: 16L << 30));
        Assert.Contains("× 1000000 samples (-n)", refused.Message);
        Assert.Contains("lower -n", refused.Message);
        DecodingMemory.Check(lm.Config, lm.Config, options with { Method = new Pargs.Decoding.Methods.BestOfNOptions { N = 4 } }, prompts: 1, longestPrompt: 6, availableBytes: 16L << 30);
        lm.Dispose();

        PargsCli.Fails(["generate", "--model", Gguf, "--method", "best-of-n", "-n", "100000000", "-r", TestPaths.ShippedPartialRm,
            "--prompt", "Once", "--max-new-tokens", "8", "--threads", "1"], "needs about", "lower -n");
    }

    [Fact]
    public void Batches_decoded_at_once_each_count_in_the_memory_check_and_a_served_lm_counts_only_the_local_reward_model()
    {
        using var lm = Pargs.Checkpoints.CheckpointLoader.Load(Gguf);
        var options = new DecodingOptions { Method = new Pargs.Decoding.Methods.PargsOptions { K = 10 }, MaxNewTokens = 64, BatchSize = 8, Decoders = 4 };
        double batch = DecodingMemory.EstimateBytes(lm.Config, lm.Config, options, 8, 6);
        long room = (long)(batch * 2 / 0.8); // two batches' caches fit, four do not
        var refused = Assert.Throws<PargsException>(() => DecodingMemory.Check(lm.Config, lm.Config, options, prompts: 32, longestPrompt: 6, availableBytes: room));
        Assert.Contains("4 batches at once (--decoders) × 8 prompts per batch", refused.Message);
        Assert.Contains("lower --decoders, --batch-size", refused.Message);
        DecodingMemory.Check(lm.Config, lm.Config, options with { Decoders = 2 }, prompts: 32, longestPrompt: 6, availableBytes: room);
        DecodingMemory.Check(lm.Config, lm.Config, options, prompts: 16, longestPrompt: 6, availableBytes: room); // two batches: two at once
        // A served LM (--lm-url): its cache is the server's; only the local reward model's counts, once per batch at once.
        double rmOnly = DecodingMemory.EstimateBytes(null, lm.Config, options, 8, 6);
        Assert.Equal(8.0 * (6 + 64 + 10) * Pargs.Models.KvCache.BytesPerSlot(lm.Config, Pargs.Models.KvCacheType.F32), rmOnly);
        Assert.Contains("4 batches at once", Assert.Throws<PargsException>(() =>
            DecodingMemory.Check(null, lm.Config, options, prompts: 32, longestPrompt: 6, availableBytes: (long)(rmOnly * 2 / 0.8))).Message);
        DecodingMemory.Check(null, null, options, prompts: 32, longestPrompt: 6, availableBytes: 1); // both models served: nothing here
    }

    [Fact]
    public void A_weight_beyond_float32_is_refused_on_the_sampling_path()
    {
        PargsCli.Fails(["generate", "--model", Gguf, "--method", "pargs", "-w", "1e39", "-r", TestPaths.ShippedPartialRm,
            "--prompt", "Once", "--max-new-tokens", "4", "--threads", "1"], "-w 1E+39", "float32");
        // Directly: an overflowing w·r is refused, not turned into a probability-0 candidate.
        var error = Assert.Throws<PargsException>(() => DecodingSteps.Combine([[-1f, -2f]], [[-10f, 0.5f]], 1e38));
        Assert.Contains("overflowed float32", error.Message);
        Assert.Contains("no candidate has a finite score",
            Assert.Throws<PargsException>(() => DecodingSteps.SampleSoftmax([float.NegativeInfinity, float.NegativeInfinity], 1.0, new Random(1))).Message);
        Assert.Equal(1, DecodingSteps.SampleSoftmax([-1000f, 0f], 1e-300, new Random(1))); // tiny temperature: argmax, not NaN
    }

    [Fact]
    public void A_decoder_count_outside_its_range_is_refused_naming_the_option()
    {
        PargsCli.Fails(["generate", "--model", Gguf, "--prompt", "Once", "--max-new-tokens", "4", "--threads", "1", "--decoders", "0"],
            "--decoders must be between 1 and 256, got 0");
        Assert.Contains("got 100000", Assert.Throws<PargsException>(() => new DecodingOptions { Decoders = 100_000 }.Validate(512)).Message);
    }

    [Fact]
    public void Eval_with_a_missing_baseline_writes_nothing()
    {
        string gens = _dir.File("g.jsonl");
        File.WriteAllText(gens, """{"instruction": "Once", "output": " a cat.", "method": "pargs"}""" + "\n");
        string outDir = _dir.File("ev");
        PargsCli.Fails(["eval", "-g", gens, "--no-model", "--baseline", "topk", "-o", outDir], "--baseline topk");
        Assert.False(Directory.Exists(outDir));
    }
}
