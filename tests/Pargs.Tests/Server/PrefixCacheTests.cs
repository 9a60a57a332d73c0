using System.Text.Json;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Tests.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Server;

/// <summary>
/// The local engine's prefix cache (what pargs serve keeps between requests): a row that joins with a prompt extending a
/// kept sequence computes only the new tokens, and its next-token log-probabilities equal a fresh prefill's (≤ 1e-5) —
/// rows that hit, miss and hit at different depths joining together, on the CPU kernel (llama) and the torch path (gpt2).
/// </summary>
public class PrefixCacheTests
{
    public static TheoryData<string> Families => new() { "llama", "gpt2" };

    static CausalLM Model(string family) => TinyModels.RandomLM(family == "gpt2" ? TinyModels.Gpt2Config() : TinyModels.LlamaConfig(), seed: 7);

    /// <summary>The next-token log-probabilities of each prompt, each prefilled alone in a fresh session (no cache).</summary>
    static float[][] Fresh(CausalLM lm, IEnumerable<int[]> prompts) => prompts.Select(p =>
    {
        using var session = LanguageModelEngine.Cached(lm).OpenSession(p.Length + 1);
        using var scope = NewDisposeScope();
        return session.AddRows([p]).LogProbs[0].data<float>().ToArray();
    }).ToArray();

    static float MaxDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    /// <summary>
    /// Two rows stepped one token a request (a steering client's step requests): each step's sequence replaces its row's last
    /// one in place (its index entry reused, only the new token's prefix indexed), so two entries stay kept, every step reads
    /// the whole last sequence, and the prefixes the rows share — and every prefix of each — are still found.
    /// </summary>
    [Fact]
    public void Rows_stepped_a_token_a_request_keep_one_entry_each_and_every_prefix_found()
    {
        using var lm = Model("llama");
        using var cache = new PrefixCache(64 << 20);
        var engine = LanguageModelEngine.Cached(lm, cache);
        int vocab = lm.Config.VocabSize;
        var shared = TinyModels.Tokens(4, vocab, 5);
        int[][] rows = [[.. shared, 1, 2], [.. shared, 3]];
        long reused = 0;
        for (int step = 0; step < 12; step++)
        {
            using (var session = engine.OpenSession(32))
            {
                using var scope = NewDisposeScope();
                var logProbs = session.AddRows(rows).LogProbs;
                var fresh = Fresh(lm, rows);
                for (int r = 0; r < rows.Length; r++) Assert.True(MaxDiff(fresh[r], logProbs[r].data<float>().ToArray()) <= 1e-5f, $"step {step}, row {r}");
                session.KeepRows([]);
            }
            if (step > 0) reused += rows.Sum(r => r.Length - 1); // the last step's sequences, whole
            Assert.Equal(reused, cache.ReusedTokens); // the first step's rows join together: neither finds the other
            Assert.Equal(2, cache.Entries);
            rows = rows.Select((r, i) => (int[])[.. r, (step * 7 + i) % vocab]).ToArray();
        }
        for (int length = 1; length <= rows[0].Length - 1; length++)
            Assert.Equal(length, cache.KeptLength([.. rows[0][..length], vocab - 1])); // each prefix of a kept row, found whole
        Assert.Equal(shared.Length, cache.KeptLength([.. shared, vocab - 1]));
        Assert.True(cache.Bytes <= cache.ByteBudget);
    }

    /// <summary>
    /// A kept sequence extended in place still leads every lookup of its prefixes after another entry that indexed a prefix
    /// they share (a second row over the same prompt) is evicted. (Found in review: reusing the node without re-claiming its
    /// older prefixes lost them with the evicted entry.)
    /// </summary>
    [Fact]
    public void An_extended_sequence_keeps_its_shared_prefixes_found_after_another_holder_is_evicted()
    {
        static KvCache Holding(int tokens)
        {
            var cache = new KvCache(TinyModels.LlamaConfig(), 1, tokens); // no keys/values allocated: only the ids count
            cache.Advance(Enumerable.Repeat(true, tokens).ToArray(), tokens);
            return cache;
        }
        using var cache = new PrefixCache(400); // 36 bytes a token: [..10, 5] and [..20] fit, one more does not
        cache.Add([1, 2, 3, 4, 10], Holding(5));
        cache.Add([1, 2, 3, 4, 20], Holding(5));   // indexes the shared prefixes last
        cache.Add([1, 2, 3, 4, 10, 5], Holding(6)); // replaces [.., 10] in place
        cache.Add([9, 9, 9, 9, 9], Holding(5));    // evicts the least recently used: [.., 20]
        Assert.Equal(1, cache.Evictions);
        Assert.Equal(2, cache.Entries);
        Assert.Equal(4, cache.KeptLength([1, 2, 3, 4, 7]));
        Assert.Equal(6, cache.KeptLength([1, 2, 3, 4, 10, 5, 8]));
    }

    [Theory, MemberData(nameof(Families))]
    public void A_cached_step_equals_a_fresh_prefill(string family)
    {
        using var lm = Model(family);
        using var cache = new PrefixCache(64 << 20);
        var engine = LanguageModelEngine.Cached(lm, cache);
        int vocab = lm.Config.VocabSize;
        var a = TinyModels.Tokens(7, vocab, 1);
        var b = TinyModels.Tokens(3, vocab, 2);
        using (var session = engine.OpenSession(32))
        {
            using var scope = NewDisposeScope();
            session.AddRows([a, b]);
            session.Append([5, 6]);       // a+5, b+6 in the caches
            session.Append([9, 10]);      // a+5+9, b+6+10
            session.KeepRows([1]);        // row a leaves: kept as a+5+9
            session.KeepRows([]);         // row b leaves: kept as b+6+10
        }
        Assert.Equal(2, cache.Entries);
        Assert.Equal(0, cache.Hits);

        // Joining together: a's sequence extended by three tokens (a hit at depth 9), b's by one (a hit at depth 5), a
        // prompt kept nowhere (a miss), and a prompt sharing only a's first four tokens (a hit at depth 4: the first slots
        // of a longer kept sequence).
        int[] extendsA = [.. a, 5, 9, 11, 12, 13];
        int[] extendsB = [.. b, 6, 10, 14];
        int[] unrelated = [vocab - 1, .. TinyModels.Tokens(5, vocab - 1, 3)];
        int[] partial = [.. a[..4], (a[4] + 1) % vocab, 2];
        Assert.True(a[0] != vocab - 1 && b[0] != vocab - 1, "the unrelated prompt starts with a token no kept sequence starts with");
        var prompts = new[] { extendsA, extendsB, unrelated, partial };
        using (var session = engine.OpenSession(32))
        {
            using var scope = NewDisposeScope();
            var logProbs = session.AddRows(prompts).LogProbs;
            var expected = Fresh(lm, prompts);
            for (int r = 0; r < prompts.Length; r++)
            {
                float diff = MaxDiff(expected[r], logProbs[r].data<float>().ToArray());
                Assert.True(diff <= 1e-5f, $"row {r}: max |Δ log p| = {diff}");
            }
            // A step after the cached join is still exact.
            var next = session.Append([3, 4, 5, 6]).LogProbs;
            var expectedNext = Fresh(lm, prompts.Select((p, i) => (int[])[.. p, 3 + i]));
            for (int r = 0; r < prompts.Length; r++)
                Assert.True(MaxDiff(expectedNext[r], next[r].data<float>().ToArray()) <= 1e-5f, $"row {r} after a step");
        }
        Assert.Equal(3, cache.Hits);
        Assert.Equal(1, cache.Misses - 2); // the first session's two prompts missed too
        Assert.Equal(a.Length + 2 + b.Length + 2 + 4, cache.ReusedTokens);
        Assert.Equal(3 + 1 + unrelated.Length + 2 + a.Length + b.Length, cache.ComputedTokens);
    }

    [Fact]
    public void An_exact_repeat_still_computes_its_last_token_and_a_sequence_is_kept_once()
    {
        using var lm = Model("llama");
        using var cache = new PrefixCache(64 << 20);
        var engine = LanguageModelEngine.Cached(lm, cache);
        var p = TinyModels.Tokens(6, lm.Config.VocabSize, 4);
        for (int round = 0; round < 2; round++)
        {
            using var session = engine.OpenSession(16);
            using var scope = NewDisposeScope();
            var got = session.AddRows([p]).LogProbs[0].data<float>().ToArray();
            Assert.True(MaxDiff(Fresh(lm, [p])[0], got) <= 1e-5f);
            session.KeepRows([]);
        }
        // The second round reused p's first five tokens (its last one is computed: its logits are not kept), and the
        // same sequence is kept once.
        Assert.Equal(1, cache.Hits);
        Assert.Equal(5, cache.ReusedTokens);
        Assert.Equal(1, cache.Entries);

        // A row that extends a kept sequence replaces it: a row stepped token by token keeps one entry, not one per step.
        using (var session = engine.OpenSession(16))
        {
            using var scope = NewDisposeScope();
            session.AddRows([p]);
            session.Append([7]);
            session.KeepRows([]);
        }
        Assert.Equal(1, cache.Entries);
        using (var session = engine.OpenSession(16))
        {
            using var scope = NewDisposeScope();
            int[] next = [.. p, 7, 8];
            Assert.True(MaxDiff(Fresh(lm, [next])[0], session.AddRows([next]).LogProbs[0].data<float>().ToArray()) <= 1e-5f);
        }
        Assert.Equal(5 + 5 + 7, cache.ReusedTokens);
    }

    [Fact]
    public void The_byte_budget_evicts_least_recently_used_first()
    {
        using var lm = Model("llama");
        var c = lm.Config;
        long perToken = 2L * c.NumLayers * c.NumKvHeads * c.HeadDim * sizeof(float) + sizeof(int);
        using var cache = new PrefixCache(perToken * 20); // room for two 8-token sequences, not three
        var engine = LanguageModelEngine.Cached(lm, cache);
        // Each starts with its own token, so no two share a prefix.
        var prompts = Enumerable.Range(0, 3).Select(i => (int[])[i + 1, .. TinyModels.Tokens(7, c.VocabSize, 10 + i)]).ToArray();
        void Keep(int[] prompt)
        {
            using var session = engine.OpenSession(16);
            using var scope = NewDisposeScope();
            session.AddRows([prompt]);
            session.KeepRows([]);
        }
        Keep(prompts[0]);
        Keep(prompts[1]);
        Assert.Equal(2, cache.Entries);
        // Using the first one makes the second the least recently used.
        using (var session = engine.OpenSession(16))
        {
            using var scope = NewDisposeScope();
            session.AddRows([[.. prompts[0], 1]]);
        }
        Assert.Equal(1, cache.Hits);
        Keep(prompts[2]);
        Assert.True(cache.Bytes <= cache.ByteBudget, $"{cache.Bytes} > {cache.ByteBudget}");
        Assert.Equal(1, cache.Evictions);
        long hits = cache.Hits;
        using (var session = engine.OpenSession(16))
        {
            using var scope = NewDisposeScope();
            session.AddRows([[.. prompts[1], 1], [.. prompts[0], 2], [.. prompts[2], 3]]);
        }
        Assert.Equal(hits + 2, cache.Hits); // 0 and 2 are kept, 1 was evicted

        using var tiny = new PrefixCache(perToken); // an entry larger than the whole budget is not kept
        var small = LanguageModelEngine.Cached(lm, tiny);
        using (var session = small.OpenSession(16))
        {
            using var scope = NewDisposeScope();
            session.AddRows([prompts[0]]);
            session.KeepRows([]);
        }
        Assert.Equal(0, tiny.Entries);
        Assert.Equal(0, tiny.Bytes);
    }
}

/// <summary>
/// Rows that all leave a session at once (a server step whose one-token requests finished) are kept as rows of the session's
/// cache, not copied: the next requests, one token longer, join from there exactly, in any order and next to a miss; the
/// cache is freed with its last entry (the byte budget sees it go), and one over the budget is copied out compactly instead.
/// </summary>
public class PrefixCacheSharedRowsTests
{
    static float MaxDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    static float[] Fresh(CausalLM lm, int[] prompt)
    {
        using var session = LanguageModelEngine.Cached(lm).OpenSession(prompt.Length + 1);
        using var scope = NewDisposeScope();
        return session.AddRows([prompt]).LogProbs[0].data<float>().ToArray();
    }

    [Fact]
    public void Rows_leaving_together_are_kept_uncopied_and_rejoin_exactly()
    {
        using var lm = TinyModels.RandomLM(TinyModels.LlamaConfig(), seed: 7);
        int vocab = lm.Config.VocabSize;
        var a = TinyModels.Tokens(7, vocab, 1);
        var b = TinyModels.Tokens(6, vocab, 2);
        long firstBytes;
        using (var probe = new PrefixCache(64 << 20))
        {
            using var session = LanguageModelEngine.Cached(lm, probe).OpenSession(4); // grown to 8 slots: 13 of 16 are the rows' own
            using var scope = NewDisposeScope();
            session.AddRows([a, b]);
            session.KeepRows([]);
            Assert.Equal(2, probe.SharedRowsKept);
            firstBytes = probe.Bytes;
        }
        // Room for the second step's cache (a few slots more) but not for both steps' caches: the first must be freed when
        // the second step's rows supersede its two rows.
        using var cache = new PrefixCache(2 * firstBytes);
        var engine = LanguageModelEngine.Cached(lm, cache);
        using (var session = engine.OpenSession(4))
        {
            using var scope = NewDisposeScope();
            session.AddRows([a, b]);
            session.KeepRows([]);
        }
        Assert.Equal(2, cache.SharedRowsKept);
        Assert.Equal(2, cache.Entries);
        Assert.Equal(firstBytes, cache.Bytes);

        int[] nextA = [.. a, 3], nextB = [.. b, 5];
        int[] unrelated = [vocab - 1, .. TinyModels.Tokens(4, vocab - 1, 3)];
        Assert.True(a[0] != vocab - 1 && b[0] != vocab - 1, "the unrelated prompt starts with a token no kept sequence starts with");
        using (var session = engine.OpenSession(4))
        {
            using var scope = NewDisposeScope();
            int[][] prompts = [nextB, unrelated, nextA]; // b's row before a's: rows come back in any order
            var logProbs = session.AddRows(prompts).LogProbs;
            for (int r = 0; r < prompts.Length; r++)
                Assert.True(MaxDiff(Fresh(lm, prompts[r]), logProbs[r].data<float>().ToArray()) <= 1e-5f, $"row {r}");
            session.KeepRows([]);
        }
        Assert.Equal(a.Length + b.Length, cache.ReusedTokens);
        // The unrelated row's 5-token prefill padded the other two and grew the cache: mostly padding and spare slots, so its
        // rows were copied out compactly instead; the first step's cache went with its two superseded rows (nothing evicted).
        Assert.Equal(2, cache.SharedRowsKept);
        Assert.Equal(3, cache.Entries);
        Assert.Equal(0, cache.Evictions);
        Assert.True(cache.Bytes <= cache.ByteBudget, $"{cache.Bytes} > {cache.ByteBudget}");

        // Once more, the two rows alone: kept uncopied again, superseding their compact copies.
        using (var session = engine.OpenSession(4))
        {
            using var scope = NewDisposeScope();
            int[][] prompts = [[.. nextA, 4], [.. nextB, 6]];
            var logProbs = session.AddRows(prompts).LogProbs;
            for (int r = 0; r < prompts.Length; r++)
                Assert.True(MaxDiff(Fresh(lm, prompts[r]), logProbs[r].data<float>().ToArray()) <= 1e-5f, $"third step, row {r}");
            session.KeepRows([]);
        }
        Assert.Equal(4, cache.SharedRowsKept);
        Assert.Equal(3, cache.Entries);
        Assert.Equal(0, cache.Evictions);

        // A session cache over the budget is not kept whole (it could not be kept at all): its rows are copied out compactly,
        // as before sharing existed, and what fits is kept (the budget holds 8 of the 16 slots: one row of 7 or 6, not both).
        using var tiny = new PrefixCache(firstBytes / 2);
        using (var session = LanguageModelEngine.Cached(lm, tiny).OpenSession(4))
        {
            using var scope = NewDisposeScope();
            session.AddRows([a, b]);
            session.KeepRows([]);
        }
        Assert.Equal(0, tiny.SharedRowsKept);
        Assert.Equal(1, tiny.Entries);
        Assert.True(tiny.Bytes <= tiny.ByteBudget, $"{tiny.Bytes} > {tiny.ByteBudget}");
    }

    [Fact]
    public void A_cache_whose_storage_holds_rows_that_left_earlier_is_copied_out_not_kept()
    {
        using var lm = TinyModels.RandomLM(TinyModels.LlamaConfig(), seed: 7);
        int vocab = lm.Config.VocabSize;
        var a = TinyModels.Tokens(7, vocab, 1);
        var b = TinyModels.Tokens(6, vocab, 2);
        using var cache = new PrefixCache(64 << 20);
        var engine = LanguageModelEngine.Cached(lm, cache);
        using (var session = engine.OpenSession(4))
        {
            using var scope = NewDisposeScope();
            session.AddRows([a, b]);
            session.Append([5, 6]);
            session.KeepRows([1]); // a leaves in place: b's cache is now a view of a two-row storage
            session.KeepRows([]);  // b (7 of 8 slots its own) leaves alone: its cache would hide a's row's bytes
        }
        Assert.Equal(0, cache.SharedRowsKept);
        Assert.Equal(2, cache.Entries);
        using (var session = engine.OpenSession(4))
        {
            using var scope = NewDisposeScope();
            int[] next = [.. b, 6, 3];
            Assert.True(MaxDiff(Fresh(lm, next), session.AddRows([next]).LogProbs[0].data<float>().ToArray()) <= 1e-5f);
        }
        Assert.Equal(b.Length + 1, cache.ReusedTokens);
    }

    [Fact]
    public void Shared_rows_are_refused_unless_they_hold_their_ids_in_one_run()
    {
        using var lm = TinyModels.RandomLM(TinyModels.LlamaConfig(), seed: 7);
        using var cache = new PrefixCache(64 << 20);
        var kv = new KvCache(lm.Config, 1, 4);
        kv.Reserve(3);
        kv.Advance([false, true, true], 3);
        var shared = PrefixCache.Share(kv);
        Assert.Throws<ArgumentException>(() => cache.AddShared([1, 2, 3], shared, 0, 0)); // slot 0 is padding
        Assert.Throws<ArgumentException>(() => cache.AddShared([1, 2], shared, 1, 1));    // no row 1
        cache.Release(shared); // nothing kept: freed here
        Assert.Equal(0, cache.Entries);
        Assert.Equal(0, cache.Bytes);
    }
}

/// <summary>pargs serve's prefix cache under a client that steps rows one token at a time (a remote engine's requests).</summary>
[Collection(ServerCollection.Name)]
public sealed class ServerPrefixCacheTests(ServerFixture fixture)
{
    [Fact]
    public async Task Step_requests_that_extend_a_prefix_reuse_it_and_report_a_fresh_prefills_logprobs()
    {
        var tokenizer = fixture.Lm.Tokenizer!;
        var prefix = tokenizer.Encode("Lily and Ben went to the big park", addBos: true);
        double reusedBefore = await Metric("pargs_prefix_cache_reused_tokens_total");
        for (int step = 0; step < 4; step++)
        {
            var body = JsonSerializer.Serialize(new { model = ServerFixture.Model, prompt = prefix, max_tokens = 1, logprobs = 8, return_tokens_as_token_ids = true, temperature = 1.0, seed = step });
            var (status, json, _) = await fixture.PostAsync("v1/completions", body);
            Assert.Equal(200, status);
            var top = json.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("top_logprobs")[0].EnumerateObject().ToList();

            using var session = LanguageModelEngine.Cached(fixture.Lm).OpenSession(prefix.Length + 1);
            using var scope = NewDisposeScope();
            var fresh = session.AddRows([prefix]).LogProbs[0].data<float>().ToArray();
            foreach (var entry in top)
            {
                int id = int.Parse(entry.Name["token_id:".Length..]);
                Assert.True(Math.Abs(fresh[id] - entry.Value.GetSingle()) <= 1e-5f, $"step {step}, token {id}: {entry.Value.GetSingle()} vs fresh {fresh[id]}");
            }
            prefix = [.. prefix, int.Parse(top[step % 3].Name["token_id:".Length..])]; // the client's choice, not the server's sample
        }
        // Steps 1..3 each found the previous step's prefix: all but one token of each came from the cache.
        double reused = await Metric("pargs_prefix_cache_reused_tokens_total") - reusedBefore;
        int first = tokenizer.Encode("Lily and Ben went to the big park", addBos: true).Length;
        Assert.True(reused >= 3 * first + 3, $"reused {reused} tokens");
    }

    [Fact]
    public async Task Rewards_of_candidates_sharing_a_prefix_reuse_it_and_equal_whole_sequence_scoring()
    {
        double reusedBefore = await Metric("pargs_prefix_cache_reused_tokens_total", ServerFixture.RewardModelName);
        string sequence = "Once upon a time, there was a little girl named Lily.";
        string[] candidates = [" She", " Her", " One", " The"];
        for (int step = 0; step < 3; step++)
        {
            var texts = candidates.Select(c => sequence + c).ToArray();
            var (status, json, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, input = texts }));
            Assert.Equal(200, status);
            var rewards = json.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("reward").GetSingle()).ToArray();
            var expected = Pargs.Rewards.SequenceRewardBatches.Score(fixture.Rm, texts.Select(t => fixture.Rm.Tokenizer!.Encode(t, addBos: true)).ToList());
            for (int i = 0; i < texts.Length; i++)
                Assert.True(Math.Abs(expected[i] - rewards[i]) <= 1e-5f, $"step {step}, text {i}: {rewards[i]} vs whole-sequence {expected[i]}");
            sequence += candidates[step]; // the client's choice extends the shared prefix
        }
        double reused = await Metric("pargs_prefix_cache_reused_tokens_total", ServerFixture.RewardModelName) - reusedBefore;
        Assert.True(reused >= 2 * fixture.Rm.Tokenizer!.Encode("Once upon a time, there was a little girl named Lily.", addBos: true).Length - 2, $"reused {reused} tokens");
    }

    [Fact]
    public async Task Concurrent_reward_requests_share_one_pass_and_each_equals_whole_sequence_scoring()
    {
        string[] openings = ["Tim was sad because his dog ran", "Lily saw a big red ball in the", "Once upon a time there was a cat", "Ben and Sue went to"];
        // One-token tails run as siblings over the prefix; a request with longer tails runs them as rows (both paths at once).
        string[] candidates = [" away", " park", " home", " school", " tree"];
        var answers = await Task.WhenAll(openings.Select(async (opening, n) =>
        {
            var texts = candidates.Select(c => opening + (n == 3 ? c + " and played all day" : c)).ToArray();
            var (status, json, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, input = texts }));
            Assert.Equal(200, status);
            return (texts, rewards: json.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("reward").GetSingle()).ToArray());
        }));
        // And alone, a request whose candidates each add exactly one token (the siblings path).
        var tokenizer = fixture.Rm.Tokenizer!;
        string story = "Tim was sad because his dog ran";
        var storyIds = tokenizer.Encode(story, addBos: true);
        var oneToken = new[] { " the", " a", " and", " to", " he", " she", " was", " it", " in", " so", " not", " big", " up", " out" }
            .Where(c => tokenizer.Encode(story + c, addBos: true) is var ids && ids.Length == storyIds.Length + 1 && ids.AsSpan().StartsWith(storyIds))
            .Take(4).ToArray();
        Assert.True(oneToken.Length >= 2, "the stories260K tokenizer has one-token words after the story");
        var single = oneToken.Select(c => story + c).ToArray();
        var (singleStatus, singleJson, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, input = single }));
        Assert.Equal(200, singleStatus);
        answers = [.. answers, (single, singleJson.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("reward").GetSingle()).ToArray())];
        foreach (var (texts, rewards) in answers)
        {
            var expected = Pargs.Rewards.SequenceRewardBatches.Score(fixture.Rm, texts.Select(t => fixture.Rm.Tokenizer!.Encode(t, addBos: true)).ToList());
            Assert.Equal(texts.Length, rewards.Length);
            for (int i = 0; i < texts.Length; i++) Assert.True(Math.Abs(expected[i] - rewards[i]) <= 1e-5f, $"{texts[i]}: {rewards[i]} vs {expected[i]}");
        }
    }

    async Task<double> Metric(string name, string model = ServerFixture.Model)
    {
        string text = await fixture.Http.GetStringAsync(new Uri(fixture.Server.Url, "metrics"));
        return text.Split('\n').Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains($"model=\"{model}\""))
            .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Sum();
    }
}
