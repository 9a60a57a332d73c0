#pragma warning disable OPENAI001
using System.ClientModel;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Engine.Remote;
using Pargs.Rewards.Remote;
using Pargs.Tests.Cli;
using Pargs.Tests.Server;
using static TorchSharp.torch;

namespace Pargs.Tests.Remote;

/// <summary>
/// A remote engine steering `pargs serve` (stories260K, in process on 127.0.0.1, a free port) gives token for token what
/// the local engine gives for the same seed: the server's raw top-k log-probabilities travel as shortest round-trip
/// float32 text and come back with the same bits.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class RemoteEngineEndToEndTests(ServerFixture fixture)
{
    static readonly string[] Prompts = ["Tim was sad because", "Once upon a time", "Lily saw a big dog"];

    RemoteEngine Connect(int topK) => RemoteEngine.Connect(
        new RemoteLmOptions { Url = fixture.Server.Url, TopK = topK, Concurrency = 4, RetryBase = TimeSpan.FromMilliseconds(20) },
        fixture.Lm.Tokenizer!, fixture.Lm.Config.EosTokenId);

    public static TheoryData<string> Methods => new() { "pargs", "args", "topk", "pargs-g" };

    [Theory]
    [MemberData(nameof(Methods))]
    public void Remote_engine_equals_the_local_engine_token_for_token(string method)
    {
        var options = new DecodingOptions
        {
            Method = DecodingMethods.Parse(method).Options(new MethodSettings { K = 8, W = 2.0 }),
            Seed = 11, MaxNewTokens = 20, BatchSize = 3,
        };
        var local = TextGenerator.Generate(fixture.Lm, fixture.Rm, Prompts, options);
        using var engine = Connect(topK: 8);
        var remote = TextGenerator.Generate(engine, fixture.Rm, Prompts, options);
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(local[i].TokenIds, remote[i].TokenIds);
            Assert.Equal(local[i].Output, remote[i].Output);
        }
        // One LM request per row and step: the prefill, then one per appended token of the batch (rows stay until it ends).
        int steps = local.Max(r => r.TokenIds.Length);
        Assert.Equal(Prompts.Length * steps, engine.Requests);
        Assert.Contains(engine.TokenizerChecks, c => c.Contains("probe strings tokenize identically"));
        Assert.Contains(engine.TokenizerChecks, c => c.Contains("vocabulary size 512 on both sides"));
    }

    [Fact]
    public void Remote_reward_model_through_pargs_rewards_scores_the_text_as_the_local_model()
    {
        using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = fixture.Server.Url, Protocol = RemoteRmProtocol.Pargs, Concurrency = 4 }, fixture.Lm.Info);
        var ids = fixture.Lm.Tokenizer!.Encode("Tim was sad because his dog ran away.", addBos: true);
        using var scope = NewDisposeScope();
        var remote = rm.SequenceRewards(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0), ones(1, ids.Length, ScalarType.Bool));
        var local = fixture.Rm.SequenceRewards(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0), ones(1, ids.Length, ScalarType.Bool));
        Assert.Equal(local.item<float>(), remote.item<float>(), 1e-5f);
        Assert.Equal(1, rm.Requests);
    }

    [Fact]
    public void Remote_reward_model_with_the_lms_tokenizer_sends_token_ids_and_scores_as_the_local_cached_scorer()
        => ScoresAsTheLocalCachedScorer(Prompts);

    /// <summary>
    /// Long prefixes: each row's keys/values stay in the server's kept row between requests (ResidentRewardRows), its
    /// chosen candidate committed where the last sibling forward wrote it — the same rewards.
    /// </summary>
    [Fact]
    public void Remote_reward_model_over_long_prefixes_keeps_each_row_where_it_is_and_scores_as_the_local_cached_scorer()
    {
        string[] longPrompts = Prompts.Select(p => p + " in the big green park with her friend and his little red ball, and they ran and ran").ToArray();
        // Steps 2 and 3 read every row's prefix (its prompt and at least one chosen token) from its kept row.
        int promptTokens = longPrompts.Sum(p => fixture.Lm.Tokenizer!.Encode(p, addBos: true).Length);
        double reused = ScoresAsTheLocalCachedScorer(longPrompts);
        Assert.True(reused >= 2 * promptTokens, $"{reused} prefix tokens read from kept rows, expected at least {2 * promptTokens}");
    }

    /// <summary>Three steps of k = 6 candidates, remote against local; returns the reward model's prefix tokens read from kept rows meanwhile.</summary>
    double ScoresAsTheLocalCachedScorer(string[] prompts)
    {
        using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = fixture.Server.Url, Concurrency = 4 }, fixture.Lm.Info);
        Assert.True(rm.SendsTokenIds, rm.TokenizerCheck);
        Assert.True(rm.SendsSharedPrefix, rm.TokenizerCheck); // each request carries its row's prefix once
        Assert.Contains("probe strings tokenize identically", rm.TokenizerCheck);
        var counts = new CandidateScoringCounts();
        using var remote = rm.OpenScorer(fixture.Lm.Info, 64, counts);
        using var local = fixture.Rm.OpenScorer(fixture.Lm.Info, 64, new CandidateScoringCounts());
        var promptIds = prompts.Select(p => fixture.Lm.Tokenizer!.Encode(p, addBos: true)).ToArray();
        remote.AddRows(promptIds);
        local.AddRows(promptIds);
        using var http = new HttpClient();
        double Metric(string name) => http.GetStringAsync(new Uri(fixture.Server.Url, "metrics")).GetAwaiter().GetResult().Split('\n')
            .Where(l => l.StartsWith($"{name}{{model=\"{ServerFixture.RewardModelName}\"}}", StringComparison.Ordinal))
            .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Single();
        double CommittedInPlace() => Metric("pargs_reward_resident_rows_committed_total");
        double committedBefore = CommittedInPlace(), reusedBefore = Metric("pargs_reward_resident_reused_tokens_total");
        var random = new Random(5);
        // Three steps: the first scores over prompts the server has not seen, the next extend each row by its chosen
        // candidate (kept in the row's cache from the last request's sibling forward on the server: no forward for the prefix).
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            var candidates = Enumerable.Range(0, prompts.Length * 6).Select(_ => (long)random.Next(3, 512)).ToArray();
            var active = Enumerable.Repeat(true, prompts.Length).ToArray();
            var remoteRewards = remote.Score(tensor(candidates, prompts.Length, 6), active);
            var localRewards = local.Score(tensor(candidates, prompts.Length, 6), active);
            for (int b = 0; b < prompts.Length; b++)
                for (int j = 0; j < 6; j++)
                    Assert.True(Math.Abs(localRewards[b][j] - remoteRewards[b][j]) <= 1e-4f, $"step {step}, row {b}, candidate {j}: {remoteRewards[b][j]} remote vs {localRewards[b][j]} local");
            var chosen = Enumerable.Range(0, prompts.Length).Select(b => random.Next(6)).ToArray();
            remote.Commit(chosen);
            local.Commit(chosen);
        }
        Assert.Equal(3 * prompts.Length, rm.Requests); // one request per row and step, the tokenizer check not counted
        // Steps 2 and 3: every row's prefix grew by a kept slot (at least 2 × rows). The counter is the shared server's, per
        // model: a request another test of the collection left in the reward worker's queue can land inside this window (seen
        // once in a full run: 7 for 6), so it is bounded, not pinned; the rewards above are checked one by one.
        Assert.InRange(CommittedInPlace() - committedBefore, 2 * prompts.Length, 3 * prompts.Length);
        return Metric("pargs_reward_resident_reused_tokens_total") - reusedBefore;
    }

    [Fact]
    public void Remote_lm_and_remote_reward_model_run_pargs_with_one_rm_request_per_row_and_step()
    {
        var options = new DecodingOptions { Method = new PargsOptions { K = 5, W = 1.5 }, Seed = 3, MaxNewTokens = 12, BatchSize = 2 };
        using var engine = Connect(topK: 5);
        using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = fixture.Server.Url, Concurrency = 4 }, engine.Info);
        var results = TextGenerator.Generate(engine, rm, Prompts[..2], options);
        int steps = results.Max(r => r.TokenIds.Length);
        Assert.Equal(2 * steps, engine.Requests);
        Assert.Equal(2 * steps, rm.Requests); // k candidates of a row in one request
        Assert.All(results, r => Assert.NotEmpty(r.TokenIds));
    }

    /// <summary>
    /// A remote reward model's scorer asks for each row's rewards as soon as the remote LM's answer for that row is in
    /// (IPrefetchingScorer): every step after the first (the scorer has no rows while the LM prefills) takes its rows'
    /// prefetched requests, no request is sent twice, and the tokens are those of the same run without prefetching.
    /// </summary>
    [Fact]
    public void A_remote_reward_models_requests_go_out_as_each_rows_lm_answer_arrives_and_change_no_token()
    {
        string[] prompts = [.. Prompts, "The cat sat on"];
        var options = new DecodingOptions { Method = new PargsOptions { K = 10, W = 2.0 }, Seed = 5, MaxNewTokens = 9, StopAtEos = false, BatchSize = prompts.Length };
        IReadOnlyList<GenerationResult> Run(bool prefetch, out RemoteEngine engine, out RemoteRewardModel rm)
        {
            engine = Connect(topK: 10);
            rm = new RemoteRewardModel(new RemoteRmOptions { Url = fixture.Server.Url, Concurrency = 8, Prefetch = prefetch }, engine.Info);
            return TextGenerator.Generate(engine, rm, prompts, options);
        }
        var plain = Run(prefetch: false, out var plainEngine, out var plainRm);
        var early = Run(prefetch: true, out var engine, out var rm);
        using (plainEngine) using (plainRm) using (engine) using (rm)
        {
            Assert.Equal(0, plainRm.Prefetched);
            Assert.Equal(prompts.Length * (options.MaxNewTokens - 1), rm.Prefetched);
            Assert.Equal(rm.Prefetched, rm.PrefetchesUsed);
            Assert.Equal(prompts.Length * options.MaxNewTokens, rm.Requests); // one per row and step, none twice
            Assert.Equal(plainRm.Requests, rm.Requests);
            Assert.Equal(plain.Select(r => r.TokenIds), early.Select(r => r.TokenIds));
        }
    }

    /// <summary>
    /// A row that finishes before the others (here a stop string only its text contains) is still appended with them, and
    /// its LM answer still arrives; no reward request is prefetched for it (no step will score it), so every prefetched
    /// request is used — an unused one was an extra request that could reach the server after the run had ended.
    /// </summary>
    [Fact]
    public void A_row_that_finishes_early_gets_no_prefetched_reward_request()
    {
        string[] prompts = [.. Prompts, "The cat sat on"];
        var baseOptions = new DecodingOptions { Method = new PargsOptions { K = 10, W = 2.0 }, Seed = 5, MaxNewTokens = 9, StopAtEos = false, BatchSize = prompts.Length };
        var full = TextGenerator.Generate(fixture.Lm, fixture.Rm, prompts, baseOptions);
        string stop = fixture.Lm.Tokenizer!.Decode(full[0].TokenIds[..4]).Trim(); // row 0's text of its first four tokens
        Assert.Contains(stop, full[0].Output);
        Assert.All(full.Skip(1), r => Assert.DoesNotContain(stop, r.Output));
        var options = baseOptions with { StopStrings = [stop] };
        using var engine = Connect(topK: 10);
        using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = fixture.Server.Url, Concurrency = 8 }, engine.Info);
        var results = TextGenerator.Generate(engine, rm, prompts, options);
        Assert.True(results[0].TokenIds.Length < options.MaxNewTokens, "row 0 did not stop early");
        Assert.All(results.Skip(1), r => Assert.Equal(options.MaxNewTokens, r.TokenIds.Length));
        Assert.Equal(rm.Prefetched, rm.PrefetchesUsed);
        Assert.Equal(results.Sum(r => r.TokenIds.Length), rm.Requests); // one per row and step it ran, none for a finished row
    }

    /// <summary>
    /// `bench remote`'s two client decoders (`generate --decoders`): the rows as two batches decoded at once over one engine
    /// (and one reward model, local or remote), or each row alone, give one batch's tokens — each batch draws its rows' own seeded streams — with one LM request per
    /// row and step, and one RM request per row and step with the reward model remote.
    /// </summary>
    [Fact]
    public void Rows_split_over_two_client_decoders_at_once_give_one_batchs_tokens_and_requests()
    {
        string[] prompts = [.. Prompts, "The cat sat on"];
        var options = new DecodingOptions { Method = new PargsOptions { K = 5, W = 2.0 }, Seed = 7, MaxNewTokens = 10, StopAtEos = false, BatchSize = prompts.Length };
        var local = TextGenerator.Generate(fixture.Lm, fixture.Rm, prompts, options);
        using var engine = Connect(topK: 5);
        var split = Pargs.Server.RemoteBenchmark.InDecoders(engine, fixture.Rm, prompts, options, decoders: 2);
        Assert.Equal(local.Select(r => r.TokenIds), split.Select(r => r.TokenIds));
        Assert.Equal(local.Select(r => r.PromptIndex), split.Select(r => r.PromptIndex));
        Assert.Equal(prompts.Length * 10, engine.Requests);
        var localSplit = Pargs.Server.RemoteBenchmark.InDecoders(Engines.For(fixture.Lm, options.Engine), fixture.Rm, prompts, options, decoders: 2);
        Assert.Equal(local.Select(r => r.TokenIds), localSplit.Select(r => r.TokenIds));
        // Every row on its own (generate --batch-size 1 --decoders 4): rows that do not wait for each other, the same tokens.
        using var perRow = Connect(topK: 5);
        var alone = TextGenerator.Generate(perRow, fixture.Rm, prompts, options with { BatchSize = 1, Decoders = prompts.Length });
        Assert.Equal(local.Select(r => r.TokenIds), alone.Select(r => r.TokenIds));
        Assert.Equal(prompts.Length * 10, perRow.Requests);

        using var engine2 = Connect(topK: 5);
        using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = fixture.Server.Url, Concurrency = 4 }, engine2.Info);
        var both = Pargs.Server.RemoteBenchmark.InDecoders(engine2, rm, prompts, options, decoders: 2);
        Assert.Equal(prompts.Length, both.Count);
        Assert.Equal(prompts.Length * 10, engine2.Requests);
        Assert.Equal(prompts.Length * 10, rm.Requests);
    }

    /// <summary>
    /// `pargs generate --lm-url … --batch-size 1 --decoders 3` through the real process: every row progresses on its own
    /// against pargs serve, and the file has the bytes one batch after another writes; without --decoders a served LM gets
    /// 4 decoders (stderr says so, and that the 5 prompts' 3 batches are all in flight), with the same bytes.
    /// </summary>
    [Fact]
    public void Generate_with_rows_on_their_own_writes_the_bytes_of_one_decoder()
    {
        using var dir = new TempDir();
        string prompts = dir.File("prompts.txt");
        File.WriteAllLines(prompts, [.. Prompts, "The cat sat on", "A bird sang"]);
        string[] Args(string output, string batch, string? decoders) =>
            ["generate", "--lm-url", fixture.Server.Url.AbsoluteUri, "--tokenizer", TestPaths.Stories260KGguf, "--rm", TestPaths.ShippedPartialRm,
             "--method", "pargs", "-k", "5", "-w", "2", "--seed", "5", "--max-new-tokens", "8", "--prompts", prompts, "--out", output,
             "--no-timings", "--threads", "1", "--batch-size", batch, .. decoders is null ? Array.Empty<string>() : ["--decoders", decoders]];
        string serial = dir.File("serial.jsonl"), alone = dir.File("alone.jsonl"), byDefault = dir.File("default.jsonl");
        Assert.Contains("rows in flight: 1 batch of up to 1 prompts at once (--decoders 1, --batch-size 1)", PargsCli.Succeeds(Args(serial, "1", "1")).Stderr);
        PargsCli.Succeeds(Args(alone, "1", "3"));
        Assert.Equal(5, File.ReadAllLines(alone).Length);
        Assert.Equal(File.ReadAllBytes(serial), File.ReadAllBytes(alone));
        Assert.Contains("rows in flight: 3 batches of up to 2 prompts at once (--decoders 4, --batch-size 2), at most 16 requests at once per server (--remote-concurrency), over pargs' own HTTP/1.1 connections",
                        PargsCli.Succeeds(Args(byDefault, "2", null)).Stderr);
        Assert.Equal(File.ReadAllBytes(serial), File.ReadAllBytes(byDefault));
        // The local copy of the served tokenizer as a GGUF of the vocabulary alone (no weights to load): the same bytes.
        string vocabOnly = dir.File("vocab-only.jsonl");
        var withVocabulary = Args(vocabOnly, "2", null);
        withVocabulary[Array.IndexOf(withVocabulary, "--tokenizer") + 1] = Pargs.Tests.Tokenizers.GgufVocabularyOnlyTests.VocabularyOnly(dir);
        PargsCli.Succeeds(withVocabulary);
        Assert.Equal(File.ReadAllBytes(serial), File.ReadAllBytes(vocabOnly));
    }

    /// <summary>
    /// `bench remote` refuses a client-decoder count that would run fewer batches than it is labelled with (3 decoders over 4
    /// rows make batches of 2: two batches), at the option and in InDecoders itself; a count above a level's rows is skipped.
    /// </summary>
    [Fact]
    public void Client_decoders_that_would_leave_a_batch_empty_are_refused()
    {
        var error = Assert.Throws<PargsException>(() => Pargs.Server.RemoteBenchmark.CheckDecoders([1, 4, 16], [1, 3]));
        Assert.Contains("--client-decoders", error.Message);
        Assert.Contains("4 rows", error.Message);
        Pargs.Server.RemoteBenchmark.CheckDecoders([1, 4, 16], [1, 2, 4]); // every level's batches are full, 4 > 1 row is skipped
        Pargs.Server.RemoteBenchmark.CheckDecoders([16], [8]);
        var options = new DecodingOptions { Method = new PargsOptions { K = 5, W = 2.0 }, Seed = 7, MaxNewTokens = 2, StopAtEos = false, BatchSize = 4 };
        string[] prompts = [.. Prompts, "The cat sat on"];
        Assert.Equal(4, prompts.Length);
        var inDecoders = Assert.Throws<PargsException>(() => Pargs.Server.RemoteBenchmark.InDecoders(Engines.For(fixture.Lm, options.Engine), fixture.Rm, prompts, options, decoders: 3));
        Assert.Contains("--client-decoders", inDecoders.Message);
    }

    [Fact]
    public async Task Token_id_prompt_returns_the_raw_top_logprobs_bit_for_bit()
    {
        // A first token no other test's prompt starts with (they start with BOS): the server's prefix cache has nothing to
        // reuse, so it prefills as the session below does and the bits must be equal (a cached step is ≤ 1e-5: PrefixCacheTests).
        int[] ids = [77, .. fixture.Lm.Tokenizer!.Encode("Once upon a time", addBos: false)];
        var body = JsonSerializer.Serialize(new { model = ServerFixture.Model, prompt = ids, max_tokens = 1, logprobs = 6, return_tokens_as_token_ids = true, seed = 1 });
        var (status, json, _) = await fixture.PostAsync("v1/completions", body);
        Assert.Equal(200, status);
        var logprobs = json.GetProperty("choices")[0].GetProperty("logprobs");
        var top = logprobs.GetProperty("top_logprobs")[0].EnumerateObject().ToList();
        Assert.Equal(6, top.Count);

        using var session = Pargs.Engine.LanguageModelEngine.Cached(fixture.Lm).OpenSession(ids.Length + 1);
        using var scope = NewDisposeScope();
        var next = session.AddRows([ids]);
        var (values, topIds) = next.TopK(6);
        var expectedValues = values.data<float>().ToArray();
        var expectedIds = topIds.data<long>().ToArray();
        for (int j = 0; j < 6; j++)
        {
            Assert.Equal($"token_id:{expectedIds[j]}", top[j].Name);
            float parsed = float.Parse(top[j].Value.GetRawText(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(BitConverter.SingleToInt32Bits(expectedValues[j]), BitConverter.SingleToInt32Bits(parsed));
        }
        // The chosen token's own log-probability is the same distribution's.
        var chosen = logprobs.GetProperty("tokens")[0].GetString()!;
        int chosenId = int.Parse(chosen["token_id:".Length..]);
        float chosenLogProb = float.Parse(logprobs.GetProperty("token_logprobs")[0].GetRawText(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(next.LogProbs[0, chosenId].item<float>(), chosenLogProb);
    }

    [Fact]
    public async Task Chat_logprobs_through_the_openai_sdk_are_the_raw_distribution()
    {
        var client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = fixture.V1, NetworkTimeout = TimeSpan.FromSeconds(60) });
        var chat = client.GetChatClient(ServerFixture.Model);
        var options = new ChatCompletionOptions { Seed = 5, MaxOutputTokenCount = 4, IncludeLogProbabilities = true, TopLogProbabilityCount = 3, Temperature = 0.7f };
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("Tim was sad because")], options);
        var tokens = completion.ContentTokenLogProbabilities;
        Assert.Equal(completion.Usage.OutputTokenCount, tokens.Count);
        Assert.All(tokens, t => Assert.Equal(3, t.TopLogProbabilities.Count));
        // Temperature 0.7 changes the sampling, not the reported numbers: they are the raw distribution of the first
        // position, which the library computes in process from the rendered prompt.
        string rendered = fixture.Models.LanguageModel(ServerFixture.Model).ChatTemplate.RenderPrompt([new Pargs.Data.ChatMessage(Pargs.Data.ChatMessage.User, "Tim was sad because")]);
        var ids = fixture.Lm.Tokenizer!.Encode(rendered, addBos: true);
        using var session = Pargs.Engine.LanguageModelEngine.Cached(fixture.Lm).OpenSession(ids.Length + 1);
        using var scope = NewDisposeScope();
        var (values, _) = session.AddRows([ids]).TopK(3);
        var expected = values.data<float>().ToArray();
        // ≤ 1e-5, not bit for bit: earlier requests rendered the same chat prompt, so the prefix cache serves part of it.
        for (int j = 0; j < 3; j++) Assert.Equal(expected[j], tokens[0].TopLogProbabilities[j].LogProbability, 1e-5f);
        Assert.Equal(tokens[0].TopLogProbabilities[0].Token, tokens[0].TopLogProbabilities[0].Token);
    }

    [Fact]
    public async Task Tokenize_answers_in_vllms_shape()
    {
        var (status, json, _) = await fixture.PostAsync("tokenize", JsonSerializer.Serialize(new { model = ServerFixture.Model, prompt = "Once upon a time" }));
        Assert.Equal(200, status);
        var expected = fixture.Lm.Tokenizer!.Encode("Once upon a time", addBos: true);
        Assert.Equal(expected, json.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray());
        Assert.Equal(expected.Length, json.GetProperty("count").GetInt32());
        Assert.Equal(fixture.Lm.Config.MaxPositions, json.GetProperty("max_model_len").GetInt32());
        Assert.Equal(512, json.GetProperty("vocab_size").GetInt32());
    }

    /// <summary>/v1/rewards' 'prefix': the sequences scored are prefix + each input's ids, as if sent whole; refused with texts.</summary>
    [Fact]
    public async Task Rewards_prefix_scores_the_prefix_followed_by_each_input()
    {
        var prefix = fixture.Lm.Tokenizer!.Encode("Tim was sad because", addBos: true);
        int[][] tails = [[42], [43, 44], [7]];
        var (status, json, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, prefix, input = tails }));
        Assert.Equal(200, status);
        var rewards = json.GetProperty("data").EnumerateArray().OrderBy(d => d.GetProperty("index").GetInt32()).Select(d => d.GetProperty("reward").GetSingle()).ToArray();
        Assert.Equal(tails.Length, rewards.Length);
        using (no_grad())
            for (int i = 0; i < tails.Length; i++)
            {
                var sequence = tensor(prefix.Concat(tails[i]).Select(t => (long)t).ToArray()).unsqueeze(0);
                Assert.Equal(fixture.Rm.SequenceRewards(sequence, ones_like(sequence, dtype: ScalarType.Bool)).item<float>(), rewards[i], 1e-4f);
            }
        // One sequence of ids after the prefix, as 'input' takes one sequence without the prefix.
        (status, json, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, prefix, input = tails[1] }));
        Assert.Equal(200, status);
        Assert.Equal(rewards[1], json.GetProperty("data")[0].GetProperty("reward").GetSingle(), 1e-4f);
        foreach (var wrong in new object[]
        {
            new { model = ServerFixture.RewardModelName, prefix, input = new[] { "a text" } },
            new { model = ServerFixture.RewardModelName, prefix, input = "a text" },
            new { model = ServerFixture.RewardModelName, prefix = "Tim", input = tails },
            new { model = ServerFixture.RewardModelName, prefix = Array.Empty<int>(), input = tails },
        })
        {
            (status, json, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(wrong));
            Assert.Equal(400, status);
            Assert.Contains("prefix", json.GetProperty("error").GetProperty("message").GetString());
        }
    }

    /// <summary>
    /// 'prefix' is bounded by the reward model's context before it is copied into each input (a long prefix times the
    /// inputs would otherwise be allocated first), and its refusals name 'prefix' — with the position in it.
    /// </summary>
    [Fact]
    public async Task Rewards_prefix_is_refused_by_name_at_the_reward_models_context()
    {
        int context = fixture.Rm.Config.MaxPositions, vocab = fixture.Rm.Config.VocabSize;
        async Task<JsonElement> Refused(object request, string param, string? code = null)
        {
            var (status, json, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(request));
            Assert.Equal(400, status);
            var error = json.GetProperty("error");
            Assert.Equal(param, error.GetProperty("param").GetString());
            if (code is not null) Assert.Equal(code, error.GetProperty("code").GetString());
            return error;
        }
        string Message(JsonElement error) => error.GetProperty("message").GetString()!;
        int[] Ids(int count) => Enumerable.Range(0, count).Select(i => 1 + i % 100).ToArray();

        // A prefix that fills the context leaves no room for an input's id.
        var error = await Refused(new { model = ServerFixture.RewardModelName, prefix = Ids(context), input = new[] { new[] { 5 } } }, "prefix", "context_length_exceeded");
        Assert.Contains($"{context}", Message(error));
        // Prefix + an input beyond the context (the prefix alone fits), with many inputs.
        error = await Refused(new { model = ServerFixture.RewardModelName, prefix = Ids(context - 2), input = Enumerable.Repeat(new[] { 5, 6, 7 }, 32).ToArray() }, "prefix", "context_length_exceeded");
        Assert.Contains("input[0]", Message(error));
        // Exactly the context is scored, as the same sequence sent whole is.
        var (okStatus, _, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, prefix = Ids(context - 1), input = new[] { new[] { 5 } } }));
        Assert.Equal(200, okStatus);

        // A malformed id in the prefix names 'prefix', one in an input 'input'.
        Assert.Contains("'prefix[1]'", Message(await Refused(new { model = ServerFixture.RewardModelName, prefix = new object[] { 1, -3 }, input = new[] { new[] { 5 } } }, "prefix")));
        Assert.Contains("'input[0][0]'", Message(await Refused(new { model = ServerFixture.RewardModelName, prefix = new[] { 1, 2 }, input = new[] { new[] { -5 } } }, "input")));
        // Outside the vocabulary: in the prefix, 'prefix' and the position in it; after it, the input's own position.
        error = await Refused(new { model = ServerFixture.RewardModelName, prefix = new[] { 1, 2, vocab + 7 }, input = new[] { new[] { 5 } } }, "prefix");
        Assert.Contains("prefix", Message(error));
        Assert.Contains($"{vocab + 7} (at 2)", Message(error));
        error = await Refused(new { model = ServerFixture.RewardModelName, prefix = new[] { 1, 2, 3 }, input = new[] { new[] { 5 }, new[] { 6, vocab } } }, "input");
        Assert.Contains($"input 1: token id {vocab} (at 1)", Message(error));
    }

    [Fact]
    public async Task Logprobs_refusals_name_the_field()
    {
        var (status, json, _) = await fixture.PostAsync("v1/completions", JsonSerializer.Serialize(new { model = ServerFixture.Model, prompt = "Hi", logprobs = 65 }));
        Assert.Equal(400, status);
        Assert.Equal("logprobs", json.GetProperty("error").GetProperty("param").GetString());
        (status, json, _) = await fixture.PostAsync("v1/completions", JsonSerializer.Serialize(new { model = ServerFixture.Model, prompt = "Hi", logprobs = 2, method = "best-of-n" }));
        Assert.Equal(400, status);
        Assert.Equal("logprobs", json.GetProperty("error").GetProperty("param").GetString());
        (status, json, _) = await fixture.PostAsync("v1/completions", JsonSerializer.Serialize(new { model = ServerFixture.Model, prompt = new[] { 1, 99999 } }));
        Assert.Equal(400, status);
        Assert.Contains("beyond the vocabulary", json.GetProperty("error").GetProperty("message").GetString());
        (status, json, _) = await fixture.PostAsync("v1/completions", JsonSerializer.Serialize(new { model = ServerFixture.Model, prompt = new[] { 1, 2 }, method = "best-of-n" }));
        Assert.Equal(400, status);
    }
}
