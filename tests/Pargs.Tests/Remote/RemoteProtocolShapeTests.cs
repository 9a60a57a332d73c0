using System.Globalization;
using System.Text.Json;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Engine.Remote;
using Pargs.Models;
using Pargs.Rewards.Remote;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Tests.Remote;

/// <summary>
/// The remote clients against the shapes real servers answer with, replayed by an in-test HTTP listener. The bodies are
/// transcribed from: vLLM's OpenAI-compatible completions with logprobs and return_tokens_as_token_ids (docs, v0.10–v0.11;
/// both its current {"error": {...}} and older {"object": "error", ...} error bodies); llama.cpp's tools/server/README.md at
/// commit 00dc8057ab28c9cb4c79a6dd6dfce07fe779f63b (/completion with n_probs, /tokenize, /v1/models meta, /props, its
/// {"error": {"code", "message", "type"}} errors); SGLang's native /generate (docs/basic_usage/native_api at commit
/// 440d418ff4d9fa76f3c50da4b293d6be02fd2518: meta_info.output_top_logprobs as [logprob, id, text] triples); TEI's
/// /predict (router/src/http/types.rs at commit 02506d0b3879596c20905951425d16f09be1a556); vLLM's /pooling (docs "Pooling Models").
/// </summary>
public sealed class RemoteProtocolShapeTests
{
    static readonly Lazy<ITokenizer> Stories = new(() =>
    {
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        return lm.Tokenizer!;
    });
    static ITokenizer Tokenizer => Stories.Value;

    /// <summary>A deterministic "model": the top tokens of a prefix (most likely first) with log-probabilities.</summary>
    static (int Id, float LogProb)[] Top(int[] prefix, int count)
        => Enumerable.Range(0, count).Select(j => ((prefix.Sum() * 7 + prefix.Length * 31 + j * 37) % 500 + 3, -0.25f - 0.5f * j - (prefix.Length % 3) * 0.01f)).ToArray();

    static int[] PrefixOf(string body, string field) => JsonDocument.Parse(body).RootElement.GetProperty(field).EnumerateArray().Select(e => e.GetInt32()).ToArray();

    static string F(float v) => v.ToString("R", CultureInfo.InvariantCulture);

    static RemoteLmOptions Options(Uri url, RemoteLmProtocol protocol, int k, int retries = 2)
        => new() { Url = url, Protocol = protocol, TopK = k, Concurrency = 4, Retries = retries, RetryBase = TimeSpan.FromMilliseconds(5), RequestTimeout = TimeSpan.FromSeconds(10) };

    /// <summary>Connects to <paramref name="server"/> as a vLLM, opens a session and returns the error its first step fails with.</summary>
    static PargsException FirstStepFails(ReplayServer server, int k, int retries = 2)
    {
        using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.OpenAi, k, retries), Tokenizer);
        using var session = engine.OpenSession(64);
        return Assert.Throws<PargsException>(() => session.AddRows([Tokenizer.Encode("Hi", addBos: true)]));
    }

    // ---- vLLM --------------------------------------------------------------------------------------------------------

    static ReplayServer.Reply Vllm(string path, string body, int returned = -1, bool addSampled = true)
    {
        switch (path)
        {
            case "/v1/models":
                return new(200, """{"object":"list","data":[{"id":"meta-llama/Llama-3.2-1B","object":"model","created":1733000000,"owned_by":"vllm","root":"meta-llama/Llama-3.2-1B","parent":null,"max_model_len":2048,"permission":[]}]}""");
            case "/tokenize":
            {
                var prompt = JsonDocument.Parse(body).RootElement.GetProperty("prompt").GetString()!;
                var ids = Tokenizer.Encode(prompt, addBos: true);
                return new(200, $$"""{"count":{{ids.Length}},"max_model_len":2048,"tokens":[{{string.Join(",", ids)}}],"token_strs":null}""");
            }
            case "/v1/completions":
            {
                var root = JsonDocument.Parse(body).RootElement;
                int k = root.GetProperty("logprobs").GetInt32();
                var top = Top(PrefixOf(body, "prompt"), returned < 0 ? k : returned);
                // vLLM adds the sampled token to the top-k; here it samples a token outside them (rank k+1).
                var entries = top.Select(t => $"\"token_id:{t.Id}\":{F(t.LogProb)}").ToList();
                if (addSampled) entries.Add("\"token_id:2\":-9.75");
                string sampled = addSampled ? "token_id:2" : $"token_id:{top[0].Id}";
                return new(200, $$$"""{"id":"cmpl-8c1f","object":"text_completion","created":1733000001,"model":"meta-llama/Llama-3.2-1B","choices":[{"index":0,"text":"{{{sampled}}}","logprobs":{"text_offset":[0],"token_logprobs":[-9.75],"tokens":["{{{sampled}}}"],"top_logprobs":[{{{{string.Join(",", entries)}}}}]},"finish_reason":"length","stop_reason":null,"prompt_logprobs":null}],"usage":{"prompt_tokens":5,"total_tokens":6,"completion_tokens":1,"prompt_tokens_details":null}}""");
            }
            default:
                return new(404, """{"detail":"Not Found"}""");
        }
    }

    [Fact]
    public void Vllm_completions_top_logprobs_are_read_in_order_without_the_added_sampled_token()
    {
        using var server = new ReplayServer((p, b) => Vllm(p, b));
        using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.OpenAi, 5), Tokenizer);
        using var session = engine.OpenSession(64);
        var prompt = Tokenizer.Encode("Once upon a time", addBos: true);
        var next = session.AddRows([prompt]);
        using var scope = NewDisposeScope();
        var (values, ids) = next.TopK(5);
        var expected = Top(prompt, 5);
        Assert.Equal(expected.Select(t => (long)t.Id), ids.data<long>().ToArray());
        Assert.Equal(expected.Select(t => t.LogProb), values.data<float>().ToArray());
        var step = server.Seen.Single(s => s.Path == "/v1/completions").Body;
        var request = JsonDocument.Parse(step).RootElement;
        Assert.Equal("meta-llama/Llama-3.2-1B", request.GetProperty("model").GetString());
        Assert.Equal(1, request.GetProperty("max_tokens").GetInt32());
        Assert.True(request.GetProperty("return_tokens_as_token_ids").GetBoolean());
        Assert.Equal(1.0, request.GetProperty("temperature").GetDouble());
        Assert.Equal(2048, engine.Info.MaxPositions);
        Assert.Throws<PargsException>(() => next.LogProbs); // a truncated distribution is never passed off as the whole one
    }

    [Fact]
    public void Steps_to_pargs_serve_are_greedy_and_to_vllm_at_temperature_1()
    {
        // pargs serve marks its model cards (pargs_kind) and returns the raw log-probs whatever the temperature: the token
        // it would draw is discarded, so the client asks for an argmax (temperature 0) instead of a 32k nucleus draw.
        using var server = new ReplayServer((p, b) => p == "/v1/models"
            ? new(200, """{"object":"list","data":[{"id":"stories260K","object":"model","created":0,"owned_by":"pargs","pargs_kind":"language_model"}]}""")
            : Vllm(p, b, addSampled: false));
        using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.OpenAi, 5), Tokenizer);
        using var session = engine.OpenSession(64);
        session.AddRows([Tokenizer.Encode("Once upon a time", addBos: true)]);
        var request = JsonDocument.Parse(server.Seen.Single(s => s.Path == "/v1/completions").Body).RootElement;
        Assert.Equal(0.0, request.GetProperty("temperature").GetDouble());
        Assert.Equal("stories260K", request.GetProperty("model").GetString());
    }

    [Fact]
    public void Fewer_logprobs_than_k_is_an_error_naming_vllms_flag()
    {
        using var server = new ReplayServer((p, b) => Vllm(p, b, returned: 3, addSampled: false));
        var e = FirstStepFails(server, 10);
        Assert.Contains("returned 3 log-probabilities where 10 were asked", e.Message);
        Assert.Contains("--max-logprobs", e.Message);
        Assert.Contains("/v1/completions", e.Message);
    }

    [Theory]
    [InlineData("""{"error":{"message":"Requested sample logprobs of 30, which is greater than max allowed: 20","type":"BadRequestError","param":null,"code":400}}""")]
    [InlineData("""{"object":"error","message":"Requested sample logprobs of 30, which is greater than max allowed: 20","type":"BadRequestError","param":null,"code":400}""")]
    public void Vllm_error_bodies_surface_with_url_status_and_message(string errorBody)
    {
        using var server = new ReplayServer((p, b) => p == "/v1/completions" ? new(400, errorBody) : Vllm(p, b));
        var e = FirstStepFails(server, 30);
        Assert.Contains($"{server.Url}v1/completions: HTTP 400", e.Message);
        Assert.Contains("greater than max allowed: 20", e.Message);
        Assert.Equal(1, server.Seen.Count(s => s.Path == "/v1/completions")); // a 400 is not retried
    }

    [Fact]
    public void Retries_back_off_on_503_and_429_then_succeed()
    {
        int failures = 0;
        using var server = new ReplayServer((p, b) =>
        {
            if (p == "/v1/completions" && Interlocked.Increment(ref failures) <= 2)
                return failures == 1 ? new(503, """{"error":{"message":"busy","type":"ServiceUnavailable","code":503}}""") : new(429, """{"error":{"message":"slow down"}}""", RetryAfter: "0");
            return Vllm(p, b);
        });
        using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.OpenAi, 4), Tokenizer);
        using var session = engine.OpenSession(64);
        session.AddRows([Tokenizer.Encode("Hi", addBos: true)]);
        Assert.Equal(3, engine.Requests);
        Assert.Equal(2, engine.Retries);
    }

    [Fact]
    public void The_last_retry_fails_with_the_url_and_status()
    {
        using var server = new ReplayServer((p, b) => p == "/v1/completions" ? new(502, "<html>Bad Gateway</html>") : Vllm(p, b));
        using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.OpenAi, 4, retries: 2), Tokenizer);
        using var session = engine.OpenSession(64);
        var e = Assert.Throws<PargsException>(() => session.AddRows([Tokenizer.Encode("Hi", addBos: true)]));
        Assert.Contains("v1/completions: HTTP 502", e.Message);
        Assert.Contains("gave up after 3 attempts", e.Message);
        Assert.Equal(3, engine.Requests);
    }

    [Fact]
    public void An_answer_larger_than_the_bound_fails_at_once_naming_the_url_and_is_not_retried()
    {
        // A step's answer padded past 8 MiB with JSON whitespace: valid JSON, but more than the client reads of one answer.
        using var server = new ReplayServer((p, b) => p == "/v1/completions" ? new(200, Vllm(p, b).Body + new string(' ', RemoteHttp.MaxAnswerBytes)) : Vllm(p, b));
        var e = FirstStepFails(server, 4, retries: 2);
        Assert.Contains($"{server.Url}v1/completions: the answer is larger than pargs reads of one (8 MiB of body", e.Message);
        Assert.Equal(1, server.Seen.Count(s => s.Path == "/v1/completions")); // not retried: the same server answers the same
    }

    [Theory]
    [InlineData("""{"choices":[]}""")]
    [InlineData("""{"choices":[{"logprobs":{"top_logprobs":"token_id:5"}}]}""")]
    [InlineData("""{"choices":[{"logprobs":{"top_logprobs":[{"token_id:5":"-0.5"}]}}]}""")]
    [InlineData("""{"choices":[{"logprobs":{"top_logprobs":[{"token_id:5":-0.5,"token_id:7":-0.75,"token_id:9":-1,"token_id:11":1e400}]}}]}""")]
    [InlineData("""{"choices":[{"logprobs":{"top_logprobs":[{"token_id:5":-0.5,"token_id:7":-0.75,"token_id:9":-1,"token_id:70000":-2}]}}]}""")]
    [InlineData("""[1, 2, 3]""")]
    public void Answers_of_the_wrong_shape_or_values_fail_with_the_url(string body)
    {
        using var server = new ReplayServer((p, b) => p == "/v1/completions" ? new(200, body) : Vllm(p, b));
        Assert.Contains($"{server.Url}v1/completions: ", FirstStepFails(server, 4).Message);
    }

    [Fact]
    public void A_server_that_dies_mid_run_fails_the_run_with_a_clear_error()
    {
        int steps = 0;
        var server = new ReplayServer((p, b) =>
        {
            // Dies at the 12th step request: from then on every connection drops without an answer.
            if (p == "/v1/completions" && Interlocked.Increment(ref steps) >= 12) return new(-1, "");
            return Vllm(p, b);
        });
        using (server)
        {
            using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.OpenAi, 4, retries: 1), Tokenizer);
            var options = new DecodingOptions { Method = new TopKOptions { K = 4 }, Seed = 1, MaxNewTokens = 30, StopAtEos = false, BatchSize = 2 };
            var e = Assert.Throws<PargsException>(() => TextGenerator.Generate(engine, null, ["Once upon a time", "Tim was sad"], options));
            Assert.Contains($"{server.Url}v1/completions", e.Message);
            Assert.True(e.Message.Contains("gave up after 2 attempts"), e.Message);
        }
    }

    [Fact]
    public void A_job_whose_server_dies_leaves_no_output_and_its_rerun_resumes_to_the_same_bytes()
    {
        using var dir = new TempDir();
        string[] prompts = ["Once upon a time", "Tim was sad", "The dog ran", "A big tree", "Lily saw a cat", "The sun was hot", "Sam had a ball"];
        var options = new DecodingOptions { Method = new TopKOptions { K = 4 }, Seed = 3, MaxNewTokens = 6, StopAtEos = false, BatchSize = 2 };
        GenerationJobSettings Job(string outPath) => new() { OutPath = outPath, Generator = "replay+topk", Fingerprint = GenerationJob.Fingerprint(["job", .. prompts]), Timings = false };

        // The uninterrupted job.
        string whole = dir.File("whole.jsonl");
        int wholeSteps = 0;
        using (var healthy = new ReplayServer((p, b) => { if (p == "/v1/completions") Interlocked.Increment(ref wholeSteps); return Vllm(p, b); }))
        using (var engine = RemoteEngine.Connect(Options(healthy.Url, RemoteLmProtocol.OpenAi, 4), Tokenizer))
            GenerationJob.Run(engine, null, prompts, options, Job(whole));
        Assert.Equal(0, wholeSteps % prompts.Length);
        int perRow = wholeSteps / prompts.Length; // one step request per row and token

        // The same job against a server that dies during the third batch (after 2 batches × 2 rows were written).
        string output = dir.File("out.jsonl");
        int steps = 0;
        using (var dying = new ReplayServer((p, b) => p == "/v1/completions" && Interlocked.Increment(ref steps) > 4 * perRow + 1 ? new(-1, "") : Vllm(p, b)))
        using (var engine = RemoteEngine.Connect(Options(dying.Url, RemoteLmProtocol.OpenAi, 4, retries: 1), Tokenizer))
        {
            var e = Assert.Throws<PargsException>(() => GenerationJob.Run(engine, null, prompts, options, Job(output)));
            Assert.Contains($"{dying.Url}v1/completions", e.Message);
            Assert.Contains("4 of 7 rows are kept", e.Message);
            Assert.Contains("run the same command again to resume", e.Message);
        }
        Assert.False(File.Exists(output)); // no partial output file
        string partial = GenerationJob.PartialPathFor(output, Job(output).Fingerprint);
        Assert.True(File.Exists(partial));

        // A torn last line (a kill in the middle of a write) is dropped and decoded again.
        File.AppendAllText(partial, "{\"instruction\":\"The dog");

        int resumedSteps = 0;
        using (var healthy = new ReplayServer((p, b) => { if (p == "/v1/completions") Interlocked.Increment(ref resumedSteps); return Vllm(p, b); }))
        using (var engine = RemoteEngine.Connect(Options(healthy.Url, RemoteLmProtocol.OpenAi, 4), Tokenizer))
        {
            var outcome = GenerationJob.Run(engine, null, prompts, options, Job(output));
            Assert.Equal(4, outcome.Resumed);
        }
        Assert.Equal(3 * perRow, resumedSteps); // only the 3 rows not yet written were decoded
        Assert.Equal(File.ReadAllBytes(whole), File.ReadAllBytes(output));
        Assert.False(File.Exists(partial));

        // Another job's partial file is never resumed into this one.
        File.WriteAllText(GenerationJob.PartialPathFor(output, "ffffffffffff"), "{\"pargs_partial_generations\":1,\"fingerprint\":\"0000\"}\n");
        var other = Job(output) with { Fingerprint = "ffffffffffff" + new string('0', 52) };
        using (var healthy = new ReplayServer((p, b) => Vllm(p, b)))
        using (var engine = RemoteEngine.Connect(Options(healthy.Url, RemoteLmProtocol.OpenAi, 4), Tokenizer))
        {
            var e = Assert.Throws<PargsException>(() => GenerationJob.Run(engine, null, prompts, options, other));
            Assert.Contains("the partial file of another job", e.Message);
        }
    }

    /// <summary>
    /// `--decoders`: batches decoded at once, each taking the next batch when it ends. The first row's requests are answered
    /// slowly, so later batches finish before it — yet the file gets the bytes of one batch after another (batches are handed
    /// on in prompt order). A server that dies mid-run leaves a partial file of whole batches in prompt order, whatever order
    /// they finished in, and the rerun resumes to the same bytes.
    /// </summary>
    [Fact]
    public void Batches_decoded_at_once_write_one_after_anothers_bytes_and_a_dying_server_leaves_whole_batches_in_order()
    {
        using var dir = new TempDir();
        string[] prompts = ["Once upon a time", "Tim was sad", "The dog ran", "A big tree", "Lily saw a cat", "The sun was hot", "Sam had a ball"];
        var serial = new DecodingOptions { Method = new TopKOptions { K = 4 }, Seed = 3, MaxNewTokens = 6, StopAtEos = false, BatchSize = 1 };
        var atOnce = serial with { Decoders = 3 };
        GenerationJobSettings Job(string outPath) => new() { OutPath = outPath, Generator = "replay+topk", Fingerprint = GenerationJob.Fingerprint(["job", .. prompts]), Timings = false };
        var firstPrompt = Tokenizer.Encode(prompts[0], addBos: true);
        ReplayServer.Reply SlowFirstRow(string p, string b)
        {
            if (p == "/v1/completions" && PrefixOf(b, "prompt").AsSpan().StartsWith(firstPrompt)) Thread.Sleep(15);
            return Vllm(p, b);
        }

        string whole = dir.File("whole.jsonl");
        using (var healthy = new ReplayServer((p, b) => Vllm(p, b)))
        using (var engine = RemoteEngine.Connect(Options(healthy.Url, RemoteLmProtocol.OpenAi, 4), Tokenizer))
            GenerationJob.Run(engine, null, prompts, serial, Job(whole));

        string decoded = dir.File("decoders.jsonl");
        var handedOn = new List<int>();
        using (var slow = new ReplayServer(SlowFirstRow))
        using (var engine = RemoteEngine.Connect(Options(slow.Url, RemoteLmProtocol.OpenAi, 4), Tokenizer))
        {
            GenerationJob.Run(engine, null, prompts, atOnce, Job(decoded));
            TextGenerator.Generate(engine, null, prompts, atOnce, batchDone: batch => handedOn.AddRange(batch.Select(r => r.PromptIndex)));
        }
        Assert.Equal(File.ReadAllBytes(whole), File.ReadAllBytes(decoded));
        Assert.Equal(Enumerable.Range(0, prompts.Length), handedOn);

        // Dies after 20 step requests: the slow first row is still running, so rows after it finished but are not handed on.
        string output = dir.File("out.jsonl");
        int steps = 0;
        using (var dying = new ReplayServer((p, b) => p == "/v1/completions" && Interlocked.Increment(ref steps) > 20 ? new(-1, "") : SlowFirstRow(p, b)))
        using (var engine = RemoteEngine.Connect(Options(dying.Url, RemoteLmProtocol.OpenAi, 4, retries: 0), Tokenizer))
        {
            var e = Assert.Throws<PargsException>(() => GenerationJob.Run(engine, null, prompts, atOnce, Job(output)));
            Assert.Contains($"{dying.Url}v1/completions", e.Message);
            Assert.Contains("run the same command again to resume", e.Message);
        }
        Assert.False(File.Exists(output));
        string partial = GenerationJob.PartialPathFor(output, Job(output).Fingerprint);
        var kept = File.ReadAllLines(partial).Skip(1).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("instruction").GetString()).ToList();
        Assert.Equal(prompts.Take(kept.Count), kept); // a prefix of the prompts, in order (empty here: the first row was slow)

        using (var healthy = new ReplayServer((p, b) => Vllm(p, b)))
        using (var engine = RemoteEngine.Connect(Options(healthy.Url, RemoteLmProtocol.OpenAi, 4), Tokenizer))
            Assert.Equal(kept.Count, GenerationJob.Run(engine, null, prompts, atOnce, Job(output)).Resumed);
        Assert.Equal(File.ReadAllBytes(whole), File.ReadAllBytes(output));
    }

    [Fact]
    public void A_tokenizer_mismatch_is_refused_with_both_values()
    {
        using var server = new ReplayServer((p, b) => p == "/tokenize"
            ? new(200, """{"count":3,"max_model_len":2048,"tokens":[1,400,401],"token_strs":null}""")
            : Vllm(p, b));
        var e = Assert.Throws<PargsException>(() => RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.OpenAi, 4), Tokenizer, tokenizerSource: "tok.json"));
        Assert.Contains("tok.json is not the server's", e.Message);
        Assert.Contains("[1, 400, 401]", e.Message);
        Assert.Contains($"[{string.Join(", ", Tokenizer.Encode(TokenizerCheck.Probes[0], addBos: true))}]", e.Message);
    }

    // ---- llama.cpp ---------------------------------------------------------------------------------------------------

    static ReplayServer.Reply LlamaCpp(string path, string body, int nVocab = 512)
    {
        switch (path)
        {
            case "/v1/models":
                return new(200, $$$"""{"models":[{"name":"stories260K.gguf","model":"stories260K.gguf","type":"model","capabilities":["completion"]}],"object":"list","data":[{"id":"stories260K.gguf","object":"model","created":1733000000,"owned_by":"llamacpp","meta":{"vocab_type":1,"n_vocab":{{{nVocab}}},"n_ctx_train":512,"n_embd":64,"n_params":260000,"size":1048576}}]}""");
            case "/props":
                return new(200, """{"default_generation_settings":{"id":0,"id_task":-1,"n_ctx":512,"speculative":false,"is_processing":false,"params":{"n_predict":-1,"temperature":0.800000011920929,"n_probs":0}},"total_slots":1,"model_path":"stories260K.gguf","chat_template":"","modalities":{"vision":false},"build_info":"b6000-00dc805"}""");
            case "/tokenize":
            {
                var content = JsonDocument.Parse(body).RootElement.GetProperty("content").GetString()!;
                return new(200, $$"""{"tokens":[{{string.Join(",", Tokenizer.Encode(content, addBos: true))}}]}""");
            }
            case "/completion":
            {
                var root = JsonDocument.Parse(body).RootElement;
                var top = Top(PrefixOf(body, "prompt"), root.GetProperty("n_probs").GetInt32());
                string Entry((int Id, float LogProb) t) => $$"""{"id":{{t.Id}},"token":"x","bytes":[120],"logprob":{{F(t.LogProb)}}}""";
                return new(200, $$"""{"index":0,"content":"x","tokens":[],"id_slot":0,"stop":true,"model":"stories260K.gguf","tokens_predicted":1,"tokens_evaluated":5,"prompt":"","has_new_line":false,"truncated":false,"stop_type":"limit","stopping_word":"","tokens_cached":4,"timings":{"prompt_n":1,"predicted_n":1},"completion_probabilities":[{"id":{{top[0].Id}},"token":"x","bytes":[120],"logprob":{{F(top[0].LogProb)}},"top_logprobs":[{{string.Join(",", top.Select(Entry))}}]}]}""");
            }
            default:
                return new(404, """{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}""");
        }
    }

    [Fact]
    public void LlamaCpp_completion_probabilities_are_read_and_the_request_asks_for_raw_probabilities()
    {
        using var server = new ReplayServer((p, b) => LlamaCpp(p, b));
        using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.LlamaCpp, 6), Tokenizer);
        Assert.Contains(engine.TokenizerChecks, c => c.Contains("vocabulary size 512 on both sides"));
        Assert.Equal(512, engine.Info.MaxPositions);
        using var session = engine.OpenSession(64);
        var prompt = Tokenizer.Encode("Lily saw a dog", addBos: true);
        using var scope = NewDisposeScope();
        var (values, ids) = session.AddRows([prompt]).TopK(6);
        Assert.Equal(Top(prompt, 6).Select(t => (long)t.Id), ids.data<long>().ToArray());
        Assert.Equal(Top(prompt, 6).Select(t => t.LogProb), values.data<float>().ToArray());
        var request = JsonDocument.Parse(server.Seen.Single(s => s.Path == "/completion").Body).RootElement;
        Assert.Equal(1, request.GetProperty("n_predict").GetInt32());
        Assert.True(request.GetProperty("cache_prompt").GetBoolean());
        Assert.False(request.GetProperty("post_sampling_probs").GetBoolean());
        Assert.Equal(prompt, request.GetProperty("prompt").EnumerateArray().Select(e => e.GetInt32()).ToArray());
    }

    [Fact]
    public void LlamaCpp_vocabulary_mismatch_and_error_bodies()
    {
        using (var server = new ReplayServer((p, b) => LlamaCpp(p, b, nVocab: 32000)))
        {
            var e = Assert.Throws<PargsException>(() => RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.LlamaCpp, 6), Tokenizer));
            Assert.Contains("has 512 tokens but the model", e.Message);
            Assert.Contains("32000", e.Message);
        }
        using (var server = new ReplayServer((p, b) => p == "/completion"
            ? new(400, """{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":600,"n_ctx":512}}""")
            : LlamaCpp(p, b)))
        {
            using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.LlamaCpp, 6), Tokenizer);
            using var session = engine.OpenSession(64);
            var e = Assert.Throws<PargsException>(() => session.AddRows([Tokenizer.Encode("Hi", addBos: true)]));
            Assert.Contains("completion: HTTP 400", e.Message);
            Assert.Contains("exceeds the available context size", e.Message);
        }
        // A build that answers probabilities (post-sampling, or the older format) is refused by name.
        using (var server = new ReplayServer((p, b) => p == "/completion"
            ? new(200, """{"content":"x","completion_probabilities":[{"id":5,"token":"x","bytes":[120],"prob":0.5,"top_probs":[{"id":5,"token":"x","bytes":[120],"prob":0.5}]}]}""")
            : LlamaCpp(p, b)))
        {
            using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.LlamaCpp, 1), Tokenizer);
            using var session = engine.OpenSession(64);
            var e = Assert.Throws<PargsException>(() => session.AddRows([Tokenizer.Encode("Hi", addBos: true)]));
            Assert.Contains("probabilities instead of log-probabilities", e.Message);
        }
    }

    // ---- SGLang ------------------------------------------------------------------------------------------------------

    static ReplayServer.Reply SgLang(string path, string body, int returned = -1)
    {
        switch (path)
        {
            case "/get_model_info":
                return new(200, """{"model_path":"meta-llama/Llama-3.2-1B-Instruct","tokenizer_path":"meta-llama/Llama-3.2-1B-Instruct","is_generation":true}""");
            case "/generate":
            {
                var root = JsonDocument.Parse(body).RootElement;
                int k = root.GetProperty("top_logprobs_num").GetInt32();
                var top = Top(PrefixOf(body, "input_ids"), returned < 0 ? k : returned);
                string triples = string.Join(",", top.Select(t => $"[{F(t.LogProb)},{t.Id},null]"));
                return new(200, $$$"""{"text":"x","output_ids":[{{{top[0].Id}}}],"meta_info":{"id":"4f1a","finish_reason":{"type":"length","length":1},"prompt_tokens":5,"weight_version":"default","completion_tokens":1,"cached_tokens":4,"e2e_latency":0.012,"output_token_logprobs":[[{{{F(top[0].LogProb)}}},{{{top[0].Id}}},null]],"output_top_logprobs":[[{{{triples}}}]]}}""");
            }
            default:
                return new(404, """{"detail":"Not Found"}""");
        }
    }

    [Fact]
    public void SgLang_output_top_logprobs_triples_are_read_and_fewer_than_k_is_an_error()
    {
        using (var server = new ReplayServer((p, b) => SgLang(p, b)))
        {
            using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.SgLang, 7), Tokenizer);
            Assert.Contains(engine.TokenizerChecks, c => c.Contains("no tokenize endpoint"));
            using var session = engine.OpenSession(64);
            var prompt = Tokenizer.Encode("Tim was happy", addBos: true);
            using var scope = NewDisposeScope();
            var (values, ids) = session.AddRows([prompt]).TopK(7);
            Assert.Equal(Top(prompt, 7).Select(t => (long)t.Id), ids.data<long>().ToArray());
            Assert.Equal(Top(prompt, 7).Select(t => t.LogProb), values.data<float>().ToArray());
            var request = JsonDocument.Parse(server.Seen.Single(s => s.Path == "/generate").Body).RootElement;
            Assert.True(request.GetProperty("return_logprob").GetBoolean());
            Assert.Equal(1, request.GetProperty("sampling_params").GetProperty("max_new_tokens").GetInt32());
            Assert.Equal(prompt, request.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        }
        using (var server = new ReplayServer((p, b) => SgLang(p, b, returned: 2)))
        {
            using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.SgLang, 7), Tokenizer);
            using var session = engine.OpenSession(64);
            var e = Assert.Throws<PargsException>(() => session.AddRows([Tokenizer.Encode("Hi", addBos: true)]));
            Assert.Contains("returned 2 log-probabilities where 7 were asked", e.Message);
            Assert.Contains("top_logprobs_num", e.Message);
        }
        using (var server = new ReplayServer((p, b) => p == "/generate" ? new(400, """{"error":{"message":"Input length (600 tokens) exceeds the maximum allowed length (512 tokens)."}}""") : SgLang(p, b)))
        {
            using var engine = RemoteEngine.Connect(Options(server.Url, RemoteLmProtocol.SgLang, 7), Tokenizer);
            using var session = engine.OpenSession(64);
            var e = Assert.Throws<PargsException>(() => session.AddRows([Tokenizer.Encode("Hi", addBos: true)]));
            Assert.Contains("exceeds the maximum allowed length", e.Message);
        }
    }

    // ---- remote reward models ----------------------------------------------------------------------------------------

    static LanguageModelInfo Info => new("stories260K", Tokenizer, 512, 512, 2);

    [Fact]
    public void Tei_predict_sends_a_batch_of_one_string_lists_with_raw_scores()
    {
        using var server = new ReplayServer((p, b) =>
        {
            if (p != "/predict") return new(404, """{"error":"not found","error_type":"Unhealthy"}""");
            int n = JsonDocument.Parse(b).RootElement.GetProperty("inputs").GetArrayLength();
            return new(200, "[" + string.Join(",", Enumerable.Range(0, n).Select(i => $$"""[{"score":{{F(0.5f - i)}},"label":"LABEL_0"}]""")) + "]");
        });
        using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url, Protocol = RemoteRmProtocol.Tei }, Info);
        Assert.Equal([0.5f, -0.5f, -1.5f], rm.Score(["a", "b", "c"]));
        var request = JsonDocument.Parse(server.Seen.Single().Body).RootElement;
        Assert.True(request.GetProperty("raw_scores").GetBoolean());
        Assert.Equal("b", request.GetProperty("inputs")[1][0].GetString());
    }

    [Fact]
    public void Tei_errors_and_multi_label_models_are_refused()
    {
        using (var server = new ReplayServer((p, b) => new(413, """{"error":"Input validation error: `inputs` must have less than 512 tokens. Given: 600","error_type":"Validation"}""")))
        {
            using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url, Protocol = RemoteRmProtocol.Tei }, Info);
            var e = Assert.Throws<PargsException>(() => rm.Score(["a"]));
            Assert.Contains("predict: HTTP 413", e.Message);
            Assert.Contains("must have less than 512 tokens", e.Message);
        }
        using (var server = new ReplayServer((p, b) => new(200, """[[{"score":0.9,"label":"POSITIVE"},{"score":0.1,"label":"NEGATIVE"}]]""")))
        {
            using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url, Protocol = RemoteRmProtocol.Tei }, Info);
            var e = Assert.Throws<PargsException>(() => rm.Score(["a"]));
            Assert.Contains("2 labels", e.Message);
        }
    }

    [Theory]
    [InlineData("[0.75]")]
    [InlineData("[[0.1],[0.3],[0.75]]")]
    public void Vllm_pooling_reads_a_sequence_or_per_token_reward(string pooled)
    {
        using var server = new ReplayServer((p, b) => p switch
        {
            "/v1/models" => new(200, """{"object":"list","data":[{"id":"Skywork/Skywork-Reward-V2-Llama-3.1-8B","object":"model","created":1733000000,"owned_by":"vllm","max_model_len":8192}]}"""),
            "/pooling" => new(200, $$$"""{"id":"pool-1","object":"list","created":1733000002,"model":"Skywork/Skywork-Reward-V2-Llama-3.1-8B","data":[{"index":1,"object":"pooling","data":[-2.0]},{"index":0,"object":"pooling","data":{{{pooled}}}}],"usage":{"prompt_tokens":9,"total_tokens":9}}"""),
            _ => new(404, """{"detail":"Not Found"}"""),
        });
        using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url, Protocol = RemoteRmProtocol.Vllm }, Info);
        Assert.Equal([0.75f, -2.0f], rm.Score(["good", "bad"]));
        var request = JsonDocument.Parse(server.Seen.Single(s => s.Path == "/pooling").Body).RootElement;
        Assert.Equal("Skywork/Skywork-Reward-V2-Llama-3.1-8B", request.GetProperty("model").GetString());
    }

    /// <summary>
    /// pargs serve's /v1/rewards with its /tokenize answering for the reward model: <paramref name="shift"/> 0 = the LM's
    /// tokenizer. <paramref name="takesPrefix"/>: a server that takes 'prefix' (the row's prefix once), else one that refuses
    /// the field as a pargs serve before it did (400, unknown_parameter). Records each scoring request's whole body.
    /// </summary>
    /// <paramref name="prefixReply"/>: what a request with 'prefix' gets instead (a busy or failing server).
    static ReplayServer PargsRewards(List<JsonElement> requests, int shift, int vocab = 512, bool takesPrefix = false, ReplayServer.Reply? prefixReply = null) => new((p, b) =>
    {
        if (p == "/v1/models") return new(200, """{"object":"list","data":[{"id":"lm","pargs_kind":"language_model"},{"id":"rm","pargs_kind":"reward_model"}]}""");
        var root = JsonDocument.Parse(b).RootElement;
        if (p == "/tokenize")
        {
            var ids = Tokenizer.Encode(root.GetProperty("prompt").GetString()!, addBos: true).Select(i => i + shift);
            return new(200, $$"""{"count":1,"max_model_len":512,"tokens":[{{string.Join(",", ids)}}],"token_strs":null,"vocab_size":{{vocab}}}""");
        }
        if (root.TryGetProperty("prefix", out _) && prefixReply is not null) return prefixReply;
        if (root.TryGetProperty("prefix", out _) && !takesPrefix)
            return new(400, """{"error":{"message":"'prefix' is not a supported parameter.","type":"invalid_request_error","param":"prefix","code":"unknown_parameter"}}""");
        var input = root.GetProperty("input");
        lock (requests) requests.Add(root.Clone());
        return new(200, "{\"object\":\"list\",\"model\":\"rm\",\"data\":[" + string.Join(",", Enumerable.Range(0, input.GetArrayLength()).Select(i => $$"""{"object":"reward","index":{{i}},"reward":{{i}}}""")) + "]}");
    });

    [Fact]
    public void Remote_scorer_sends_token_ids_only_when_the_reward_models_tokenizer_is_the_lms()
    {
        var inputs = new List<JsonElement>();
        var prompts = new[] { Tokenizer.Encode("Once upon", addBos: true) };
        int[][] Sequences(JsonElement input) => input.EnumerateArray().Select(seq => seq.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
        using (var server = PargsRewards(inputs, shift: 0)) // a pargs serve that does not take 'prefix': whole sequences
        using (var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url }, Info))
        {
            Assert.True(rm.SendsTokenIds, rm.TokenizerCheck);
            Assert.False(rm.SendsSharedPrefix);
            Assert.Contains("does not take 'prefix'", rm.TokenizerCheck);
            using var scorer = rm.OpenScorer(Info, 64, new CandidateScoringCounts());
            scorer.AddRows(prompts);
            using var scope = NewDisposeScope();
            var rewards = scorer.Score(tensor(new long[] { 10, 11, 12 }, 1, 3), [true]);
            Assert.Equal([0f, 1f, 2f], rewards[0]);
            Assert.Equal(1, rm.Requests); // the tokenizer probes are not counted
            var sent = Assert.Single(inputs);
            Assert.False(sent.TryGetProperty("prefix", out _));
            Assert.Equal([[.. prompts[0], 10], [.. prompts[0], 11], [.. prompts[0], 12]], Sequences(sent.GetProperty("input")));
        }
        inputs.Clear();
        using (var server = PargsRewards(inputs, shift: 0, takesPrefix: true)) // one that does: the row's prefix once
        using (var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url }, Info))
        {
            Assert.True(rm.SendsSharedPrefix, rm.TokenizerCheck);
            using var scorer = rm.OpenScorer(Info, 64, new CandidateScoringCounts());
            scorer.AddRows(prompts);
            using var scope = NewDisposeScope();
            Assert.Equal([0f, 1f, 2f], scorer.Score(tensor(new long[] { 10, 11, 12 }, 1, 3), [true])[0]);
            Assert.Equal(1, rm.Requests); // the probe of 'prefix' at connect is not counted either
            var sent = inputs[^1];
            Assert.Equal(prompts[0], sent.GetProperty("prefix").EnumerateArray().Select(e => e.GetInt32()).ToArray());
            Assert.Equal([[10], [11], [12]], Sequences(sent.GetProperty("input")));
        }
        inputs.Clear();
        using (var server = PargsRewards(inputs, shift: 1)) // another tokenizer: texts, and the check says why
        using (var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url }, Info))
        {
            Assert.False(rm.SendsTokenIds);
            Assert.Contains("not the LM's", rm.TokenizerCheck);
            rm.Score(["Once upon a time"]);
            Assert.Equal(JsonValueKind.String, Assert.Single(inputs).GetProperty("input")[0].ValueKind);
        }
        using (var server = PargsRewards(inputs, shift: 0, vocab: 100)) // the same tokenizer but a vocabulary short of the LM's ids
        using (var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url }, Info))
        {
            Assert.False(rm.SendsTokenIds);
            Assert.Contains("smaller than the LM's", rm.TokenizerCheck);
        }
    }

    /// <summary>
    /// Only a 400 naming 'prefix' makes the scorer send whole sequences: a server busy or failing when asked (503 through
    /// the retries, a 500) is an error at connect, not a session of k-fold bodies logged as "does not take 'prefix'".
    /// </summary>
    [Fact]
    public void The_prefix_question_falls_back_only_on_a_refusal_of_prefix()
    {
        var inputs = new List<JsonElement>();
        foreach (var (reply, status) in new[]
        {
            (new ReplayServer.Reply(503, """{"error":{"message":"The server is busy.","type":"server_error","param":null,"code":"server_busy"}}"""), "503"),
            (new ReplayServer.Reply(500, """{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"""), "500"),
            (new ReplayServer.Reply(400, """{"error":{"message":"'model' is required.","type":"invalid_request_error","param":"model","code":null}}"""), "400"),
        })
            using (var server = PargsRewards(inputs, shift: 0, prefixReply: reply))
            {
                var e = Assert.ThrowsAny<PargsException>(() => new RemoteRewardModel(new RemoteRmOptions { Url = server.Url, Retries = 1, RetryBase = TimeSpan.FromMilliseconds(5) }, Info).Dispose());
                Assert.Contains($"HTTP {status}", e.Message);
                Assert.DoesNotContain("does not take", e.Message);
            }
        // An older pargs serve's refusal: "Unrecognized request argument supplied: prefix", param "prefix".
        using (var server = PargsRewards(inputs, shift: 0, prefixReply: new(400, """{"error":{"message":"Unrecognized request argument supplied: prefix","type":"invalid_request_error","param":"prefix","code":"unknown_parameter"}}""")))
        using (var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url, Retries = 1, RetryBase = TimeSpan.FromMilliseconds(5) }, Info))
        {
            Assert.True(rm.SendsTokenIds, rm.TokenizerCheck);
            Assert.False(rm.SendsSharedPrefix);
            Assert.Contains("does not take 'prefix'", rm.TokenizerCheck);
        }
    }

    /// <summary>The shared form's body buffer is sized for the prefix once, not once per candidate; both forms carry the same sequences.</summary>
    [Fact]
    public void Rewards_body_with_a_shared_prefix_is_sized_for_the_prefix_once()
    {
        var prefix = Enumerable.Range(0, 2000).Select(i => 100 + i % 400).ToArray();
        int[][] tails = Enumerable.Range(0, 10).Select(j => new[] { 300 + j }).ToArray();
        var shared = RemoteRewardModel.RewardsBody("rm", prefix, tails, shared: true);
        var whole = RemoteRewardModel.RewardsBody("rm", prefix, tails, shared: false);
        Assert.True(shared.Capacity <= 2 * shared.WrittenCount, $"{shared.Capacity} bytes held for a {shared.WrittenCount}-byte body");
        Assert.True(whole.Capacity <= 2 * whole.WrittenCount, $"{whole.Capacity} bytes held for a {whole.WrittenCount}-byte body");
        var sharedRoot = JsonDocument.Parse(shared.WrittenMemory).RootElement;
        var wholeRoot = JsonDocument.Parse(whole.WrittenMemory).RootElement;
        int[] Ints(JsonElement a) => a.EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var sharedPrefix = Ints(sharedRoot.GetProperty("prefix"));
        Assert.Equal(prefix, sharedPrefix);
        Assert.False(wholeRoot.TryGetProperty("prefix", out _));
        for (int j = 0; j < tails.Length; j++)
        {
            Assert.Equal(tails[j], Ints(sharedRoot.GetProperty("input")[j]));
            Assert.Equal([.. prefix, .. tails[j]], Ints(wholeRoot.GetProperty("input")[j]));
        }
    }

    [Fact]
    public void Remote_scorer_sends_the_k_candidates_of_a_row_in_one_request()
    {
        var texts = new List<string[]>();
        using var server = new ReplayServer((p, b) =>
        {
            if (p == "/v1/models") return new(200, """{"object":"list","data":[{"id":"lm","pargs_kind":"language_model"},{"id":"rm","pargs_kind":"reward_model"}]}""");
            if (p == "/tokenize") return new(404, """{"detail":"Not Found"}"""); // a server that cannot say its reward model's tokenizer: texts
            var input = JsonDocument.Parse(b).RootElement.GetProperty("input").EnumerateArray().Select(e => e.GetString()!).ToArray();
            lock (texts) texts.Add(input);
            return new(200, "{\"object\":\"list\",\"model\":\"rm\",\"data\":[" + string.Join(",", input.Select((t, i) => $$"""{"object":"reward","index":{{i}},"reward":{{F(t.Length)}}}""")) + "]}");
        });
        using var rm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url }, Info);
        Assert.False(rm.SendsTokenIds);
        using var scorer = rm.OpenScorer(Info, 64, new CandidateScoringCounts());
        var prompts = new[] { Tokenizer.Encode("Once upon", addBos: true), Tokenizer.Encode("Tim", addBos: true) };
        scorer.AddRows(prompts);
        using var scope = NewDisposeScope();
        var candidates = tensor(new long[] { 10, 11, 12, 20, 21, 22 }, 2, 3);
        var rewards = scorer.Score(candidates, [true, true]);
        Assert.Equal(2, rm.Requests);
        Assert.All(texts, t => Assert.Equal(3, t.Length));
        Assert.Equal(rm.TextOf(prompts[0].Append(11)).Length, rewards[0][1]);
        scorer.Commit([1, 2]);
        scorer.Score(candidates, [true, false]); // a finished row costs no request
        Assert.Equal(3, rm.Requests);
        Assert.Contains(texts, t => t[0] == rm.TextOf([.. prompts[0], 11, 10]));
    }
}
