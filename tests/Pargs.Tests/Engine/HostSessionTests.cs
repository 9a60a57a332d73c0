using Pargs.Checkpoints;
using Pargs.Engine;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Engine;

/// <summary>
/// The host engine (<see cref="HostSession"/>, no torch) against the torch session (<see cref="LocalEngine"/> on the same
/// file loaded by <see cref="CausalLM.LoadForInference"/>) on stored-precision checkpoints: every row's log-probabilities
/// within 1e-5 and the same top tokens through prefill, steps, rows leaving and forking (KeepRows) and joining (AddRows).
/// </summary>
public class HostSessionTests : IDisposable
{
    readonly TempDir dir = new();
    public void Dispose() => dir.Dispose();

    string Checkpoint(string name, string type)
    {
        if (name == "stories260K") return TestPaths.Stories260KGguf; // llama2.c's model as a float32 GGUF
        if (type == "folder")
        {
            string folder = dir.File(name);
            ReferenceCheckpoints.Write(name, folder); // a Hugging Face folder: config.json + model.safetensors, mapped
            return folder;
        }
        string path = dir.File($"{name}-{type}.gguf");
        ReferenceCheckpoints.WriteGguf(name, path, GgufConverter.ParseType(type));
        return path;
    }

    [Theory]
    [InlineData("stories260K", "f32")]
    [InlineData("llama", "q8_0")] // Meta's rotary layout reordered in the view; integer dot products
    [InlineData("qwen2", "f16")]  // q/k/v biases
    [InlineData("qwen3", "bf16")] // per-head q/k norms, head_dim ≠ hidden / heads
    [InlineData("qwen2", "folder")] // safetensors, generation_config.json beside it
    [InlineData("llama", "q4_0", KvCacheType.F16)] // --kv-cache f16: keys and values rounded to halves on both engines
    public void The_host_session_answers_what_the_torch_session_answers(string name, string type, KvCacheType cache = KvCacheType.F32)
    {
        string path = Checkpoint(name, type);
        using var host = HostLanguageModel.TryLoad(path) ?? throw new Xunit.Sdk.XunitException($"{name} {type}: the host engine refused it");
        using var torchLm = CausalLM.LoadForInference(path);
        Assert.NotNull(torchLm.StoredWeights);
        host.KvCacheType = cache;
        torchLm.Backbone.KvCacheType = cache;
        var tokenizer = host.Tokenizer!;
        var prompts = new[] { "Once upon a time", "The girl waved at the little boat and the sailor" }
            .Select(p => tokenizer.Encode(p, addBos: true)).ToArray();
        Assert.NotEqual(prompts[0].Length, prompts[1].Length); // ragged: left padding

        using var a = LanguageModelEngine.Host(host).OpenSession(40);
        using var b = LanguageModelEngine.Cached(torchLm).OpenSession(40);
        var next = Same("prefill", a.AddRows(prompts), b.AddRows(prompts));
        for (int step = 0; step < 3; step++) next = Same($"step {step}", a.Append(next), b.Append(next));
        next = Same("fork and leave", a.KeepRows([1, 0, 1]), b.KeepRows([1, 0, 1]));
        next = Same("step after KeepRows", a.Append(next), b.Append(next));
        var joining = new[] { tokenizer.Encode("One day a small boat", addBos: true) };
        var joined = Same("join", a.AddRows(joining), b.AddRows(joining));
        Assert.Equal(4, a.Rows);
        next = Same("step after the join", a.Append(joined), b.Append(joined));
        next = Same("leave", a.KeepRows([3, 1, 2]), b.KeepRows([3, 1, 2])); // row 0 leaves and the last row takes its place (a continuous batch): in place in the torch session
        Same("last step", a.Append(next), b.Append(next));
    }

    [Fact]
    public void Positions_past_the_first_rotary_rows_grow_the_host_tables_to_the_same_values()
    {
        // The host model tabulates 128 positions at first; a 200-token prompt grows its tables (the torch session's stored
        // backbone starts at 1024 and does not grow).
        using var twins = new Stories260KTwins(210);
        var (a, b) = (twins.Host, twins.Torch);
        var prompt = Enumerable.Range(0, 200).Select(i => 3 + i * 37 % 500).Prepend(1).ToArray();
        var next = Same("200-token prefill", a.AddRows([prompt]), b.AddRows([prompt]));
        for (int step = 0; step < 3; step++) next = Same($"step {step} past position 200", a.Append(next), b.Append(next));
    }

    [Fact]
    public void A_joining_prompt_longer_than_the_running_rows_shifts_them_right_and_keeps_their_numbers()
    {
        using var twins = new Stories260KTwins(64);
        var (a, b) = (twins.Host, twins.Torch);
        int[] shortPrompt = [1, 42, 7];
        var next = Same("short prefill", a.AddRows([shortPrompt]), b.AddRows([shortPrompt]));
        next = Same("step", a.Append(next), b.Append(next));
        var longPrompt = Enumerable.Range(0, 30).Select(i => 3 + i * 13 % 400).Prepend(1).ToArray(); // 31 slots against 4
        var joined = Same("long join", a.AddRows([longPrompt]), b.AddRows([longPrompt]));
        next = Same("step after the join", a.Append(joined), b.Append(joined));
        next = Same("first row leaves", a.KeepRows([1]), b.KeepRows([1]));
        Same("step after it left", a.Append(next), b.Append(next));
    }

    [Fact]
    public void A_cache_type_set_on_the_model_after_the_session_opened_does_not_reach_its_joins()
    {
        // The session reads the model's (settable) cache type once: a join after the model was set to f16 still builds an
        // f32 joining cache, as its running rows' (a mix of element sizes would be copied with one size's offsets).
        using var twins = new Stories260KTwins(32);
        var (a, b) = (twins.Host, twins.Torch);
        int[] first = [1, 42, 7, 99, 13];
        var next = Same("prefill", a.AddRows([first]), b.AddRows([first]));
        next = Same("step", a.Append(next), b.Append(next));
        twins.HostModel.KvCacheType = KvCacheType.F16; // for sessions opened from now on
        int[] second = [1, 300, 5];
        var joined = Same("join after the model's cache type changed", a.AddRows([second]), b.AddRows([second]));
        Same("step after the join", a.Append(joined), b.Append(joined));
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void Stepping_past_the_cache_capacity_grows_it_to_the_same_numbers(KvCacheType cacheType)
    {
        // Capacity 2: the prefill reserves the prompt's 7 slots, then steps regrow the cache (7 → 14 → 28) with rows that
        // hold real slots, and a join lands on a grown cache.
        using var twins = new Stories260KTwins(2, cacheType);
        var (a, b) = (twins.Host, twins.Torch);
        int[][] prompts = [[1, 42, 7], [1, 5, 300, 21, 8, 77, 3]];
        var next = Same("prefill", a.AddRows(prompts), b.AddRows(prompts));
        for (int step = 0; step < 9; step++) next = Same($"step {step}", a.Append(next), b.Append(next));
        int[] joining = [1, 64, 9];
        next = Same("join on a grown cache", a.AddRows([joining]), b.AddRows([joining]));
        for (int step = 0; step < 14; step++) next = Same($"step {step} after the join", a.Append(next), b.Append(next));
    }

    [Fact]
    public void Rows_join_a_session_all_of_whose_rows_left()
    {
        using var twins = new Stories260KTwins(16);
        var (a, b) = (twins.Host, twins.Torch);
        int[][] prompts = [[1, 42, 7], [1, 5, 300, 21]];
        var next = Same("prefill", a.AddRows(prompts), b.AddRows(prompts));
        next = Same("step", a.Append(next), b.Append(next));
        a.KeepRows([]);
        b.KeepRows([]);
        Assert.Equal(0, a.Rows);
        int[] joining = [1, 64, 9, 11, 400];
        next = Same("join an empty session", a.AddRows([joining]), b.AddRows([joining]));
        Assert.Equal(1, a.Rows);
        Same("step after it", a.Append(next), b.Append(next));
    }

    [Fact]
    public void The_log_probability_tensor_is_made_once_and_let_go_at_the_next_call()
    {
        // A method reading LogProbs on the host engine (SearchRewards.Rows, ContinuousDecoder) gets one tensor per answer,
        // detached from its scopes and disposed by the session when the next call overwrites the buffer under it.
        using var host = HostLanguageModel.TryLoad(TestPaths.Stories260KGguf)!;
        var session = LanguageModelEngine.Host(host).OpenSession(16);
        var first = session.AddRows([[1, 42, 7]]);
        var tensor = first.LogProbs;
        Assert.Same(tensor, first.LogProbs);
        Assert.False(tensor.IsInvalid);
        var next = session.Append([5]);
        Assert.True(tensor.IsInvalid, "the last answer's tensor outlived the session's next step");
        Assert.Throws<InvalidOperationException>(() => first.LogProbs); // its buffer now holds the next step's numbers
        Assert.Throws<InvalidOperationException>(() => first.TopKRows(2)); // so do its top tokens and nucleus
        Assert.Throws<InvalidOperationException>(() => first.TopP(0.9));
        Assert.Equal(2, next.TopKRows(2).Ids.Length); // the current answer reads as before
        var last = next.LogProbs;
        session.Dispose();
        Assert.True(last.IsInvalid, "the last answer's tensor outlived the session");
    }

    [Fact]
    public void A_session_dropped_without_Dispose_gives_its_native_cache_back()
    {
        // 48 sessions of 100,000 slots (stories260K: 10 buffers of 12.8 MB each, ~6 GB of address space in all; calloc maps
        // them untouched, so nothing becomes resident) dropped undisposed: the caches' finalizers unmap them. Measured as
        // the process's address space (VmSize), with a margin for what tests running beside this one map meanwhile.
        using var host = HostLanguageModel.TryLoad(TestPaths.Stories260KGguf)!;
        var engine = LanguageModelEngine.Host(host);
        OpenAndDrop(engine); // the first session's one-time mappings (code, tables) before the baseline
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = VirtualBytes();
        for (int i = 0; i < 48; i++) OpenAndDrop(engine);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long grown = VirtualBytes() - before;
        Assert.True(grown < 2L << 30, $"the address space grew by {grown >> 20} MiB after 48 undisposed sessions (~6,000 MiB of caches)");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static void OpenAndDrop(LanguageModelEngine engine) => engine.OpenSession(100_000).AddRows([[1, 42, 7]]);

    static long VirtualBytes()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmSize:", StringComparison.Ordinal));
        return long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    /// <summary>Asserts the two answers agree and returns each row's most likely token (the next step's input).</summary>
    /// <summary>
    /// stories260K's GGUF loaded by the host engine and by torch, one session of <paramref name="capacity"/> slots on each
    /// (both models' KV caches of <paramref name="cacheType"/>): the pair the tests below step side by side.
    /// </summary>
    sealed class Stories260KTwins : IDisposable
    {
        public readonly HostLanguageModel HostModel = HostLanguageModel.TryLoad(TestPaths.Stories260KGguf)!;
        public readonly CausalLM TorchModel = CausalLM.LoadForInference(TestPaths.Stories260KGguf);
        public readonly ILanguageModelSession Host, Torch;

        public Stories260KTwins(int capacity, KvCacheType cacheType = KvCacheType.F32)
        {
            HostModel.KvCacheType = cacheType;
            TorchModel.Backbone.KvCacheType = cacheType;
            Host = LanguageModelEngine.Host(HostModel).OpenSession(capacity);
            Torch = LanguageModelEngine.Cached(TorchModel).OpenSession(capacity);
        }

        public void Dispose()
        {
            Torch.Dispose();
            Host.Dispose();
            TorchModel.Dispose();
            HostModel.Dispose();
        }
    }

    static long[] Same(string what, NextTokens host, NextTokens torch)
    {
        float[] expected = torch.LogProbs.contiguous().data<float>().ToArray();
        using var hostTensor = host.LogProbs.contiguous();
        float[] actual = hostTensor.data<float>().ToArray();
        Assert.Equal(expected.Length, actual.Length);
        float worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]));
        Assert.True(worst <= 1e-5f, $"{what}: max |host − torch| log-prob = {worst}");
        var (hostTop, hostIds) = host.TopKRows(5);
        var (torchTop, torchIds) = torch.TopKRows(5);
        Assert.Equal(torchIds, hostIds);
        for (int i = 0; i < hostTop.Length; i++) Assert.True(Math.Abs(hostTop[i] - torchTop[i]) <= 1e-5f, $"{what}: top-k value {i}");
        var (_, hostNucleus) = host.TopP(0.8);
        var (_, torchNucleus) = torch.TopP(0.8);
        Assert.Equal(torchNucleus, hostNucleus);
        return hostIds.Where((_, i) => i % 5 == 0).ToArray();
    }

    [Fact]
    public void Models_the_host_engine_does_not_compute_whole_are_left_to_torch()
    {
        // A sliding window's restricted mask is built by torch; LongRoPE switches table pairs; GPT-2 has no stored kernel;
        // llama2.c's .bin is not a stored-precision file.
        Assert.True(HostLanguageModel.Serves(ReferenceCheckpoints.Config("mistral")));
        Assert.False(HostLanguageModel.Serves(ReferenceCheckpoints.Config("mistral") with { SlidingWindow = 16 }));
        Assert.False(HostLanguageModel.Serves(ReferenceCheckpoints.Config("llama") with { RopeScaling = new RopeScaling { Type = "longrope" } }));
        Assert.False(HostLanguageModel.Serves(ReferenceCheckpoints.Config("gpt2")));
        Assert.Null(HostLanguageModel.TryLoad(TestPaths.Stories260KBin));
    }

    [Fact]
    public void The_host_engine_refuses_a_reward_model_scorer_in_one_line()
    {
        using var host = HostLanguageModel.TryLoad(TestPaths.Stories260KGguf)!;
        var engine = LanguageModelEngine.Host(host);
        Assert.False(engine.UsesTorch);
        var error = Assert.Throws<PargsException>(() => engine.OpenScorer(null!, 4, 16, new Pargs.Decoding.CandidateScoringCounts()));
        Assert.Contains("without a reward model", error.Message);
    }

    [Fact]
    public void A_prompt_past_the_context_is_refused_and_the_running_rows_stay()
    {
        using var host = HostLanguageModel.TryLoad(Checkpoint("llama", "f16"))!;
        using var session = LanguageModelEngine.Host(host).OpenSession(8);
        session.AddRows([[1, 5, 9]]);
        var error = Assert.Throws<PargsException>(() => session.AddRows([Enumerable.Repeat(5, host.Config.MaxPositions + 1).ToArray()]));
        Assert.Contains("max_position_embeddings", error.Message);
        Assert.Equal(1, session.Rows);
        session.Append([4]); // the running row still decodes
    }
}
