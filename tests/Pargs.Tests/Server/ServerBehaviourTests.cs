using System.Net;
using System.Text;
using System.Text.Json;
using Pargs.Decoding;
using Pargs.Rewards;
using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>Limits, cancellation, authentication, metrics and the rewards endpoint of `pargs serve`.</summary>
[Collection(ServerCollection.Name)]
public sealed class ServerBehaviourTests(ServerFixture fixture)
{
    async Task<PargsServer> GatedServer(GatedBackend backend, ServerLimits? limits = null, string? apiKey = null)
    {
        var models = new ServedModels(disposeModels: false).AddLanguageModel(ServerFixture.Model, fixture.Lm);
        return await PargsServer.StartAsync(models, new PargsServerOptions { Port = 0, Limits = limits ?? new ServerLimits(), ApiKey = apiKey }, backend);
    }

    static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");
    const string Request = """{"model":"stories260K","prompt":"Once upon a time","stream":true}""";

    [Fact]
    public async Task A_full_queue_answers_429_with_retry_after_and_recovers()
    {
        var backend = new GatedBackend();
        await using var server = await GatedServer(backend, new ServerLimits { MaxQueuedRequests = 2 });
        using var http = new HttpClient();
        var held = new List<HttpResponseMessage>();
        for (int i = 0; i < 2; i++)
        {
            var message = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Url, "v1/completions")) { Content = Body(Request) };
            held.Add(await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead)); // admitted: headers and the first delta sent
        }
        using var refused = await http.PostAsync(new Uri(server.Url, "v1/completions"), Body(Request));
        Assert.Equal(429, (int)refused.StatusCode);
        Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
        var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());

        backend.Release();
        foreach (var response in held)
        {
            string text = await response.Content.ReadAsStringAsync();
            Assert.EndsWith("data: [DONE]\n\n", text);
            response.Dispose();
        }
        using var after = await http.PostAsync(new Uri(server.Url, "v1/completions"), Body(Request));
        Assert.Equal(200, (int)after.StatusCode);
        var metrics = await http.GetStringAsync(new Uri(server.Url, "metrics"));
        Assert.Contains("pargs_requests_rejected_total 1", metrics);
        Assert.Contains("pargs_requests_total{endpoint=\"completions\",status=\"429\"} 1", metrics);
    }

    [Fact]
    public async Task A_client_that_disconnects_cancels_its_request()
    {
        var backend = new GatedBackend();
        await using var server = await GatedServer(backend);
        using (var http = new HttpClient())
        {
            var message = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Url, "v1/completions")) { Content = Body(Request) };
            using var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead);
            using var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[16];
            Assert.True(await stream.ReadAsync(buffer) > 0); // the first delta arrived: the request is running
        } // the connection closes here
        await backend.FirstCancelled.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(1, backend.Cancelled);
    }

    /// <summary>With the real backend: a stream dropped after its first event stops decoding, and the next request runs at once.</summary>
    [Fact]
    public async Task A_dropped_stream_frees_the_engine()
    {
        using (var http = new HttpClient())
        {
            var message = new HttpRequestMessage(HttpMethod.Post, new Uri(fixture.Server.Url, "v1/completions"))
            { Content = Body("""{"model":"stories260K","prompt":"Once upon a time","stream":true,"max_tokens":256,"method":"pargs","k":32,"n":2,"seed":1}""") };
            using var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync());
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (status, body, _) = await fixture.PostAsync("v1/completions", """{"model":"stories260K","prompt":"Once","max_tokens":2,"seed":1}""");
        Assert.Equal(200, status);
        // The dropped request (512 candidate sequences × 256 steps) would take many seconds to run out.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the next request waited {clock.Elapsed}");
        Assert.Equal(2, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Api_key_is_required_when_set_and_non_loopback_needs_one()
    {
        var backend = new GatedBackend();
        await using var server = await GatedServer(backend, apiKey: "s3cret");
        using var http = new HttpClient();
        using var anonymous = await http.GetAsync(new Uri(server.Url, "v1/models"));
        Assert.Equal(401, (int)anonymous.StatusCode);
        Assert.Equal("invalid_api_key", JsonDocument.Parse(await anonymous.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
        using var wrong = new HttpRequestMessage(HttpMethod.Get, new Uri(server.Url, "v1/models"));
        wrong.Headers.Authorization = new("Bearer", "guess");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong)).StatusCode);
        using var right = new HttpRequestMessage(HttpMethod.Get, new Uri(server.Url, "v1/models"));
        right.Headers.Authorization = new("Bearer", "s3cret");
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(right)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(server.Url, "health"))).StatusCode);

        var models = new ServedModels(disposeModels: false).AddLanguageModel(ServerFixture.Model, fixture.Lm);
        var open = await Assert.ThrowsAsync<PargsException>(() => PargsServer.StartAsync(models, new PargsServerOptions { Host = "0.0.0.0", Port = 0 }, new GatedBackend()));
        Assert.Contains("--api-key", open.Message);
        await Assert.ThrowsAsync<PargsException>(() => PargsServer.StartAsync(models, new PargsServerOptions { Host = "example.com", Port = 0 }, new GatedBackend()));
    }

    [Fact]
    public async Task Rewards_equal_the_reward_model_in_process()
    {
        var (status, body, _) = await fixture.PostAsync("v1/rewards",
            """{"model":"stories260K-partial-rm","input":["Tim was happy. He smiled.",{"prompt":"Tim was","response":" sad. He cried."}]}""");
        Assert.Equal(200, status);
        var rewards = body.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("reward").GetSingle()).ToArray();
        var tokenizer = fixture.Rm.Tokenizer!;
        var expected = SequenceRewardBatches.Score(fixture.Rm, [tokenizer.Encode("Tim was happy. He smiled.", addBos: true), tokenizer.Encode("Tim was sad. He cried.", addBos: true)]);
        // The texts share "Tim was": the server runs that prefix once (its prefix cache), so sums run in another order.
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], rewards[i], 1e-5f);
        Assert.NotEqual(rewards[0], rewards[1]);
    }

    [Fact]
    public async Task Rewards_of_token_ids_equal_the_rewards_of_their_texts()
    {
        // ids in = texts in: the reward model's own ids of each text (BOS first, as the server tokenizes a text) score as the text.
        string[] texts = ["Tim was happy. He smiled.", "Lily saw a big dog", "Once upon a time, there was a cat."];
        var tokenizer = fixture.Rm.Tokenizer!;
        var ids = texts.Select(t => tokenizer.Encode(t, addBos: true)).ToArray();
        var (status, byText, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, input = texts }));
        Assert.Equal(200, status);
        var (idsStatus, byIds, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, input = ids }));
        Assert.Equal(200, idsStatus);
        var (oneStatus, one, _) = await fixture.PostAsync("v1/rewards", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, input = ids[1] })); // one flat sequence
        Assert.Equal(200, oneStatus);
        float[] Rewards(JsonElement body) => body.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("reward").GetSingle()).ToArray();
        var expected = SequenceRewardBatches.Score(fixture.Rm, ids);
        Assert.Equal(texts.Length, Rewards(byIds).Length);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(expected[i], Rewards(byText)[i], 1e-5f);
            Assert.Equal(expected[i], Rewards(byIds)[i], 1e-5f);
        }
        Assert.Equal(expected[1], Assert.Single(Rewards(one)), 1e-5f);
        // /tokenize answers for the reward model too (a remote reward model compares tokenizers before sending ids).
        var (tokStatus, tokenized, _) = await fixture.PostAsync("tokenize", JsonSerializer.Serialize(new { model = ServerFixture.RewardModelName, prompt = texts[0] }));
        Assert.Equal(200, tokStatus);
        Assert.Equal(ids[0], tokenized.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()));
        Assert.Equal(fixture.Rm.Config.VocabSize, tokenized.GetProperty("vocab_size").GetInt32());
    }

    /// <summary>n choices stream interleaved; each equals its non-streamed choice, and stop strings cut both the same.</summary>
    [Fact]
    public async Task Several_choices_and_stop_strings_stream_as_they_answer()
    {
        string request = """{"model":"stories260K","prompt":"Lily and Ben","max_tokens":40,"seed":5,"n":3,"stop":[". ","!"],"temperature":0.9}""";
        var (status, body, _) = await fixture.PostAsync("v1/completions", request);
        Assert.Equal(200, status);
        var texts = body.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).ToArray();
        Assert.Equal(3, texts.Length);
        var (streamed, events, done) = await fixture.StreamAsync("v1/completions", request.Replace("\"n\":3", "\"n\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true}"), n: 3);
        Assert.True(done);
        Assert.Equal(texts, streamed);
        Assert.True(events[^1].TryGetProperty("usage", out var usage));
        Assert.Equal(body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32());
        var reference = TextGenerator.Generate(fixture.Lm, null, Enumerable.Repeat("Lily and Ben", 3).ToArray(),
            new DecodingOptions { Method = new Pargs.Decoding.Methods.TopPOptions { P = 1, Temperature = 0.9 }, Seed = 5, MaxNewTokens = 40, StopStrings = [". ", "!"], BatchSize = 3 });
        Assert.Equal(reference.Select(r => r.Output).ToArray(), texts);
        Assert.All(texts, t => Assert.False(t.Contains(". ") || t.Contains('!'), t));
    }

    [Fact]
    public async Task Metrics_are_prometheus_text()
    {
        await fixture.PostAsync("v1/completions", """{"model":"stories260K","prompt":"Once","max_tokens":3,"seed":1}""");
        using var response = await fixture.Http.GetAsync(new Uri(fixture.Server.Url, "metrics"));
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        string text = await response.Content.ReadAsStringAsync();
        foreach (var name in new[] { "pargs_requests_total", "pargs_prompt_tokens_total", "pargs_completion_tokens_total", "pargs_queue_depth", "pargs_request_duration_seconds", "pargs_time_to_first_token_seconds", "pargs_inter_token_latency_seconds" })
            Assert.Contains($"# TYPE {name} ", text);
        Assert.Matches(@"pargs_request_duration_seconds_bucket\{le=""\+Inf""\} [1-9]", text);
        // Every sample line is NAME{labels} VALUE with a number.
        foreach (var line in text.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')))
            Assert.Matches(@"^[a-z_]+(\{[^}]*\})? -?[0-9.eE+-]+$", line);
    }

    /// <summary>
    /// The process's own counters (what the CPU per streamed token outside the decoding worker is read from): typed as
    /// counters, and each one that a streamed request must move moves across one.
    /// </summary>
    [Fact]
    public async Task Metrics_carry_the_process_cpu_allocation_and_thread_pool_counters()
    {
        async Task<(string Text, Dictionary<string, double> Values)> Scrape()
        {
            string text = await fixture.Http.GetStringAsync(new Uri(fixture.Server.Url, "metrics"));
            var values = text.Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#'))
                .ToDictionary(l => l[..l.LastIndexOf(' ')], l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            return (text, values);
        }
        var (text, before) = await Scrape();
        string[] counters = ["process_cpu_seconds_total", "dotnet_gc_allocated_bytes_total", "dotnet_collection_count_total", "dotnet_gc_pause_seconds_total",
            "dotnet_jit_compiled_methods_total", "dotnet_jit_compilation_seconds_total", "dotnet_threadpool_completed_items_total", "dotnet_monitor_lock_contention_total"];
        foreach (var name in counters) Assert.Contains($"# TYPE {name} counter\n", text);
        Assert.Contains("# TYPE dotnet_threadpool_threads gauge\n", text);
        Assert.True(before.ContainsKey("dotnet_collection_count_total{generation=\"0\"}"));
        var (_, _, done) = await fixture.StreamAsync("v1/completions", """{"model":"stories260K","prompt":"Once","max_tokens":8,"seed":3,"stream":true}""");
        Assert.True(done);
        var (_, after) = await Scrape();
        foreach (var name in new[] { "process_cpu_seconds_total", "dotnet_gc_allocated_bytes_total", "dotnet_threadpool_completed_items_total" })
            Assert.True(after[name] > before[name], $"{name}: {before[name]} -> {after[name]}");
        Assert.True(after["dotnet_threadpool_threads"] >= 1);
    }
}
