using System.Text;
using System.Text.Json;
using Pargs.Decoding;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>
/// One `pargs serve` for the server tests: the shipped stories260K and its partial RM, on 127.0.0.1 with a free port.
/// The tests of the collection run one after another, so a test may also use the same models in process (for
/// reference outputs) while the server is idle.
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string Model = "stories260K";
    public const string RewardModelName = "stories260K-partial-rm";

    public CausalLM Lm { get; private set; } = null!;
    public RewardModel Rm { get; private set; } = null!;
    public ServedModels Models { get; private set; } = null!;
    public PargsServer Server { get; private set; } = null!;
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };
    public static readonly ServerLimits Limits = new() { MaxTokens = 256, MaxN = 4, MaxK = 32, MaxSequencesPerRequest = 64, MaxBodyBytes = 256 * 1024, MaxQueuedRequests = 8 };

    public Uri V1 => new(Server.Url, "v1");

    public async Task InitializeAsync()
    {
        Lm = CausalLM.Load(TestPaths.Stories260KGguf);
        Rm = RewardModel.Load(TestPaths.ShippedPartialRm);
        Models = new ServedModels().AddRewardModel(RewardModelName, Rm).AddLanguageModel(Model, Lm);
        Server = await PargsServer.StartAsync(Models, new PargsServerOptions { Port = 0, Limits = Limits });
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Models.Dispose();
        Http.Dispose();
    }

    /// <summary>What the library gives in process for one prompt (the reference every server answer is held to).</summary>
    public string Reference(string prompt, DecodingOptions options) => TextGenerator.Generate(Lm, Rm, [prompt], options)[0].Output;

    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(string path, string json)
        => await PostAsync(path, Encoding.UTF8.GetBytes(json));

    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(string path, byte[] body, string contentType = "application/json")
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Server.Url, path)) { Content = content };
        // A large body waits for the server's 100 Continue, as HTTP provides: a server refusing it by its
        // Content-Length answers 413 before the client sends it (without, the client's write breaks on the closed connection).
        if (body.Length > 1 << 20) request.Headers.ExpectContinue = true;
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonDocument.Parse(text.Length == 0 ? "null" : text).RootElement.Clone(), response);
    }

    /// <summary>The text of a server-sent-events stream: each choice's deltas joined, and the events seen.</summary>
    public async Task<(string[] Texts, List<JsonElement> Events, bool Done)> StreamAsync(string path, string json, int n = 1)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Server.Url, path)) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var texts = Enumerable.Range(0, n).Select(_ => new StringBuilder()).ToArray();
        var events = new List<JsonElement>();
        bool done = false;
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            Assert.StartsWith("data: ", line);
            Assert.False(done, "an event after [DONE]");
            string data = line["data: ".Length..];
            if (data == "[DONE]") { done = true; continue; }
            var e = JsonDocument.Parse(data).RootElement.Clone();
            events.Add(e);
            foreach (var choice in e.GetProperty("choices").EnumerateArray())
            {
                int index = choice.GetProperty("index").GetInt32();
                if (choice.TryGetProperty("text", out var t)) texts[index].Append(t.GetString());
                if (choice.TryGetProperty("delta", out var d) && d.TryGetProperty("content", out var c)) texts[index].Append(c.GetString());
            }
        }
        return (texts.Select(t => t.ToString()).ToArray(), events, done);
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "pargs serve";
}
