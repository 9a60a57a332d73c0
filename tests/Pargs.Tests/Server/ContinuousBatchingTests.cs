using System.Text;
using System.Text.Json;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>
/// Concurrent requests share the server's batched steps (continuous batching) and each still returns what it
/// returns alone: 64 streaming PARGS requests with different prompts, seeds and lengths, all at once.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class ContinuousBatchingTests(ServerFixture fixture)
{
    static readonly string[] Prompts = ["Once upon a time", "Tim was sad because", "The little dog", "Lily saw a big"];

    [Fact]
    public async Task Sixty_four_concurrent_streams_each_equal_their_sequential_run()
    {
        const int streams = 64;
        // Its own server over the fixture's models, admitting all 64 at once (the fixture's admits 8).
        await using var server = await PargsServer.StartAsync(fixture.Models, new PargsServerOptions
        {
            Port = 0, Limits = ServerFixture.Limits with { MaxQueuedRequests = streams },
        });
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
        int MaxTokens(int i) => 4 + i % 13;

        async Task<string> Stream(int i)
        {
            string json = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["model"] = ServerFixture.Model, ["prompt"] = Prompts[i % Prompts.Length], ["max_tokens"] = MaxTokens(i), ["seed"] = i,
                ["method"] = "pargs", ["k"] = 4, ["w"] = 2.0, ["stream"] = true,
            });
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Url, "v1/completions")) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(200, (int)response.StatusCode);
            var text = new StringBuilder();
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
                var choice = JsonDocument.Parse(line["data: ".Length..]).RootElement.GetProperty("choices")[0];
                text.Append(choice.GetProperty("text").GetString());
            }
            return text.ToString();
        }

        var texts = await Task.WhenAll(Enumerable.Range(0, streams).Select(i => Task.Run(() => Stream(i))));
        for (int i = 0; i < streams; i++)
        {
            var options = new DecodingOptions { Method = new PargsOptions { K = 4, W = 2.0 }, Seed = i, MaxNewTokens = MaxTokens(i) };
            Assert.Equal(fixture.Reference(Prompts[i % Prompts.Length], options), texts[i]);
        }
    }
}
