using System.Text;
using System.Text.Json;

namespace Pargs.Tests.Server;

/// <summary>
/// Requests a server must refuse: each gets its 4xx with OpenAI's error body (message, type, param, code), and the
/// server answers the next request as before.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class BadRequestCorpusTests(ServerFixture fixture)
{
    const string Completions = "v1/completions", Chat = "v1/chat/completions", Rewards = "v1/rewards";
    const string M = "\"model\":\"stories260K\"";
    const string P = "\"prompt\":\"Once upon a time\"";
    const string Msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]";

    static object?[] Case(string name, string path, string body, int status, string? param = null) => [name, path, Encoding.UTF8.GetBytes(body), status, param];
    static object?[] Bytes(string name, string path, byte[] body, int status, string? param = null) => [name, path, body, status, param];

    public static IEnumerable<object?[]> Corpus()
    {
        // Not JSON, or not an object.
        yield return Case("empty body", Completions, "", 400);
        yield return Case("truncated json", Completions, "{\"model\":\"stories260K\",", 400);
        yield return Case("trailing garbage", Completions, $"{{{M},{P}}} x", 400);
        yield return Case("array body", Completions, "[1,2]", 400);
        yield return Case("string body", Chat, "\"hello\"", 400);
        yield return Case("NaN literal", Completions, $"{{{M},{P},\"temperature\":NaN}}", 400);
        yield return Case("Infinity literal", Completions, $"{{{M},{P},\"top_p\":Infinity}}", 400);
        yield return Case("single quotes", Completions, "{'model':'stories260K'}", 400);
        yield return Case("comment", Completions, $"{{/* c */{M},{P}}}", 400);
        yield return Case("deep nesting", Completions, new string('[', 200) + new string(']', 200), 400);
        yield return Bytes("invalid UTF-8 in a string", Completions, [.. Encoding.UTF8.GetBytes($"{{{M},\"prompt\":\""), 0xFF, 0xFE, .. Encoding.UTF8.GetBytes("\"}")], 400);
        yield return Bytes("lone UTF-8 lead byte", Chat, [.. Encoding.UTF8.GetBytes($"{{{M},\"messages\":[{{\"role\":\"user\",\"content\":\"a"), 0xC3, .. Encoding.UTF8.GetBytes("\"}]}")], 400);
        yield return Bytes("10 MB body", Completions, Encoding.UTF8.GetBytes($"{{{M},\"prompt\":\"" + new string('a', 10 << 20) + "\"}"), 413);
        // Missing or wrong-typed fields.
        yield return Case("no model", Completions, $"{{{P}}}", 400, "model");
        yield return Case("no prompt", Completions, $"{{{M}}}", 400, "prompt");
        yield return Case("no messages", Chat, $"{{{M}}}", 400, "messages");
        yield return Case("model is a number", Completions, $"{{\"model\":5,{P}}}", 400, "model");
        yield return Case("prompt is a number", Completions, $"{{{M},\"prompt\":5}}", 400, "prompt");
        yield return Case("token id beyond the vocabulary", Completions, $"{{{M},\"prompt\":[1,2,99999]}}", 400, "prompt");
        yield return Case("negative token id", Completions, $"{{{M},\"prompt\":[1,-2]}}", 400, "prompt");
        yield return Case("token id not an integer", Completions, $"{{{M},\"prompt\":[1,2.5]}}", 400, "prompt");
        yield return Case("two prompts", Completions, $"{{{M},\"prompt\":[\"a\",\"b\"]}}", 400, "prompt");
        yield return Case("max_tokens a string", Completions, $"{{{M},{P},\"max_tokens\":\"10\"}}", 400, "max_tokens");
        yield return Case("max_tokens fractional", Completions, $"{{{M},{P},\"max_tokens\":2.5}}", 400, "max_tokens");
        yield return Case("temperature a string", Completions, $"{{{M},{P},\"temperature\":\"hot\"}}", 400, "temperature");
        yield return Case("stream a string", Completions, $"{{{M},{P},\"stream\":\"yes\"}}", 400, "stream");
        yield return Case("stop a number", Completions, $"{{{M},{P},\"stop\":5}}", 400, "stop");
        yield return Case("stop an empty string", Completions, $"{{{M},{P},\"stop\":[\"\"]}}", 400, "stop");
        yield return Case("too many stop strings", Completions, $"{{{M},{P},\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}}", 400, "stop");
        yield return Case("messages an object", Chat, $"{{{M},\"messages\":{{}}}}", 400, "messages");
        yield return Case("messages empty", Chat, $"{{{M},\"messages\":[]}}", 400, "messages");
        yield return Case("message without role", Chat, $"{{{M},\"messages\":[{{\"content\":\"Hi\"}}]}}", 400, "messages[0].role");
        yield return Case("unknown role", Chat, $"{{{M},\"messages\":[{{\"role\":\"wizard\",\"content\":\"Hi\"}}]}}", 400, "messages[0].role");
        yield return Case("tool message", Chat, $"{{{M},\"messages\":[{{\"role\":\"tool\",\"content\":\"Hi\",\"tool_call_id\":\"x\"}}]}}", 400);
        yield return Case("image content", Chat, $"{{{M},\"messages\":[{{\"role\":\"user\",\"content\":[{{\"type\":\"image_url\",\"image_url\":{{\"url\":\"x\"}}}}]}}]}}", 400, "messages[0].content");
        yield return Case("unknown field", Completions, $"{{{M},{P},\"temprature\":0.5}}", 400, "temprature");
        yield return Case("duplicate field", Completions, $"{{{M},{P},\"n\":1,\"n\":2}}", 400, "n");
        // Numbers out of range.
        yield return Case("huge number", Completions, $"{{{M},{P},\"temperature\":1e400}}", 400, "temperature");
        yield return Case("negative max_tokens", Completions, $"{{{M},{P},\"max_tokens\":-1}}", 400, "max_tokens");
        yield return Case("zero max_tokens", Completions, $"{{{M},{P},\"max_tokens\":0}}", 400, "max_tokens");
        yield return Case("huge max_tokens", Completions, $"{{{M},{P},\"max_tokens\":1000000000000}}", 400, "max_tokens");
        string story = string.Concat(Enumerable.Repeat("Once upon a time. ", 60)); // ~300 tokens of a 512-token context
        yield return Case("prompt + max_tokens beyond the context", Completions, $"{{{M},\"prompt\":\"{story}\",\"max_tokens\":256}}", 400, "max_tokens");
        yield return Case("prompt beyond the context", Chat, $"{{{M},\"messages\":[{{\"role\":\"user\",\"content\":\"{story}{story}\"}}]}}", 400, "messages");
        yield return Case("temperature negative", Completions, $"{{{M},{P},\"temperature\":-0.5}}", 400, "temperature");
        yield return Case("temperature above 2", Completions, $"{{{M},{P},\"temperature\":3}}", 400, "temperature");
        yield return Case("top_p zero", Completions, $"{{{M},{P},\"top_p\":0}}", 400, "top_p");
        yield return Case("top_p above 1", Completions, $"{{{M},{P},\"top_p\":1.5}}", 400, "top_p");
        yield return Case("n zero", Completions, $"{{{M},{P},\"n\":0}}", 400, "n");
        yield return Case("n huge", Completions, $"{{{M},{P},\"n\":1000}}", 400, "n");
        yield return Case("seed beyond 32 bits", Completions, $"{{{M},{P},\"seed\":99999999999}}", 400, "seed");
        yield return Case("seed beyond 64 bits", Completions, $"{{{M},{P},\"seed\":1e30}}", 400, "seed");
        // Models: unknown, a path, a reward model.
        yield return Case("unknown model", Completions, $"{{\"model\":\"gpt-4\",{P}}}", 404, "model");
        yield return Case("a path as model", Completions, $"{{\"model\":\"/work/data/models/stories260K\",{P}}}", 404, "model");
        yield return Case("a relative path as model", Chat, $"{{\"model\":\"../../etc/passwd\",{Msgs}}}", 404, "model");
        yield return Case("a reward model as LM", Completions, $"{{\"model\":\"stories260K-partial-rm\",{P}}}", 400, "model");
        yield return Case("unknown reward model", Completions, $"{{{M},{P},\"method\":\"pargs\",\"reward_model\":\"nope\"}}", 404, "reward_model");
        yield return Case("a path as reward model", Completions, $"{{{M},{P},\"method\":\"pargs\",\"reward_model\":\"data/models/stories260K-partial-rm\"}}", 404, "reward_model");
        // Guided decoding settings.
        yield return Case("unknown method", Completions, $"{{{M},{P},\"method\":\"beam\"}}", 400, "method");
        yield return Case("k zero", Completions, $"{{{M},{P},\"method\":\"topk\",\"k\":0}}", 400, "k");
        yield return Case("k beyond the limit", Completions, $"{{{M},{P},\"method\":\"pargs\",\"k\":33}}", 400, "k");
        yield return Case("n × k beyond the limit", Completions, $"{{{M},{P},\"method\":\"pargs\",\"k\":32,\"n\":4}}", 400, "n");
        yield return Case("n × best_of beyond the limit", Completions, $"{{{M},{P},\"method\":\"best-of-n\",\"best_of\":32,\"n\":4}}", 400, "n");
        yield return Case("w with greedy", Completions, $"{{{M},{P},\"method\":\"greedy\",\"w\":2}}", 400, "w");
        yield return Case("k without a method", Completions, $"{{{M},{P},\"k\":5}}", 400, "k");
        yield return Case("top_p with pargs", Completions, $"{{{M},{P},\"method\":\"pargs\",\"top_p\":0.5}}", 400, "top_p");
        yield return Case("temperature 0 with pargs", Completions, $"{{{M},{P},\"method\":\"pargs\",\"temperature\":0}}", 400, "temperature");
        yield return Case("w a string", Completions, $"{{{M},{P},\"method\":\"pargs\",\"w\":\"2\"}}", 400, "w");
        yield return Case("reward_model with topk", Completions, $"{{{M},{P},\"method\":\"topk\",\"reward_model\":\"stories260K-partial-rm\"}}", 400, "reward_model");
        // Refused OpenAI features.
        yield return Case("logprobs beyond the limit", Completions, $"{{{M},{P},\"logprobs\":65}}", 400, "logprobs");
        yield return Case("chat top_logprobs without logprobs", Chat, $"{{{M},{Msgs},\"top_logprobs\":2}}", 400, "top_logprobs");
        yield return Case("tools", Chat, $"{{{M},{Msgs},\"tools\":[{{\"type\":\"function\",\"function\":{{\"name\":\"f\"}}}}]}}", 400, "tools");
        yield return Case("echo", Completions, $"{{{M},{P},\"echo\":true}}", 400, "echo");
        yield return Case("stream_options without stream", Chat, $"{{{M},{Msgs},\"stream_options\":{{\"include_usage\":true}}}}", 400, "stream_options");
        yield return Case("both max token fields", Chat, $"{{{M},{Msgs},\"max_tokens\":5,\"max_completion_tokens\":5}}", 400, "max_completion_tokens");
        yield return Case("empty prompt", Completions, $"{{{M},\"prompt\":\"\"}}", 400, "prompt");
        // Rewards.
        yield return Case("rewards without input", Rewards, "{\"model\":\"stories260K-partial-rm\"}", 400, "input");
        yield return Case("rewards with an LM", Rewards, "{\"model\":\"stories260K\",\"input\":\"a\"}", 404, "model");
        yield return Case("rewards input a number", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":5}", 400, "input");
        yield return Case("rewards pair without response", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[{\"prompt\":\"a\"}]}", 400, "input[0]");
        yield return Case("rewards text beyond the context", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":\"" + string.Concat(Enumerable.Repeat("Once upon a time. ", 200)) + "\"}", 400, "input");
        yield return Case("rewards too many inputs", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[" + string.Join(",", Enumerable.Repeat("\"a\"", 65)) + "]}", 400, "input");
        // Rewards of token ids (OpenAI's embeddings shape): integers only, in the reward model's vocabulary (512), within its context (512).
        yield return Case("rewards ids with a string", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[[1,\"a\",3]]}", 400, "input");
        yield return Case("rewards ids with a fraction", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[[1,2.5]]}", 400, "input");
        yield return Case("rewards ids negative", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[1,-4]}", 400, "input");
        yield return Case("rewards ids beyond int32", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[[1,4294967296]]}", 400, "input");
        yield return Case("rewards ids nested deeper", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[[[1,2]]]}", 400, "input");
        yield return Case("rewards ids empty", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[[1,2],[]]}", 400, "input");
        yield return Case("rewards ids outside the vocabulary", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[[1,2],[1,512]]}", 400, "input");
        yield return Case("rewards ids beyond the context", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[[" + string.Join(",", Enumerable.Repeat("5", 513)) + "]]}", 400, "input");
        yield return Case("rewards ids too many sequences", Rewards, "{\"model\":\"stories260K-partial-rm\",\"input\":[" + string.Join(",", Enumerable.Repeat("[1,5]", 65)) + "]}", 400, "input");
        yield return Case("tokenize an unknown model", "tokenize", "{\"model\":\"no-such-rm\",\"prompt\":\"a\"}", 404, "model");
        // Routes.
        yield return Case("unknown route", "v1/embeddings", $"{{{M},\"input\":\"a\"}}", 404);
        yield return Case("path traversal route", "v1/../../etc/passwd", "{}", 404);
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public async Task Refused_with_an_openai_error_and_the_server_stays_up(string name, string path, byte[] body, int status, string? param)
    {
        var (actual, json, _) = await fixture.PostAsync(path, body);
        Assert.True(status == actual, $"{name}: expected {status}, got {actual}: {json}");
        Assert.True(json.ValueKind == JsonValueKind.Object && json.TryGetProperty("error", out _), $"{name}: no error object in {json}");
        var error = json.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()), name);
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out var p) && error.TryGetProperty("code", out _), $"{name}: param and code must be present: {json}");
        if (param is not null) Assert.True(param == p.GetString(), $"{name}: expected param {param}, got {p}: {json}");
        Assert.DoesNotContain("   at ", error.GetProperty("message").GetString()); // no stack trace

        using var health = await fixture.Http.GetAsync(new Uri(fixture.Server.Url, "health"));
        Assert.Equal(200, (int)health.StatusCode);
    }

    [Fact]
    public void Corpus_has_at_least_fifty_refusals() => Assert.True(Corpus().Count(c => (int)c[3]! >= 400) >= 50);

    [Fact]
    public async Task Wrong_http_method_is_refused_with_an_openai_error()
    {
        using var response = await fixture.Http.DeleteAsync(new Uri(fixture.Server.Url, "v1/completions"));
        Assert.Equal(405, (int)response.StatusCode);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(json.TryGetProperty("error", out _));
    }
}
