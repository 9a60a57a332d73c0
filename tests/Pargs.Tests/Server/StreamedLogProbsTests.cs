#pragma warning disable OPENAI001
using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace Pargs.Tests.Server;

/// <summary>
/// <c>stream: true</c> with log-probabilities, in OpenAI's chunk shapes: each chunk carries the entries of the tokens
/// accepted since the last chunk, so a stream's chunks joined equal the non-streamed answer's log-probabilities entry for
/// entry (chat through the OpenAI SDK's streaming client; completions' tokens / token_logprobs / top_logprobs /
/// text_offset through raw server-sent events).
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class StreamedLogProbsTests(ServerFixture fixture)
{
    const string Prompt = "Tim was sad because";

    OpenAIClient Client() => new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = fixture.V1, NetworkTimeout = TimeSpan.FromSeconds(60) });

    [Fact]
    public async Task Chat_stream_through_the_sdk_carries_every_token_logprob_of_the_non_streamed_answer()
    {
        var chat = Client().GetChatClient(ServerFixture.Model);
        var options = new ChatCompletionOptions { IncludeLogProbabilities = true, TopLogProbabilityCount = 3, MaxOutputTokenCount = 16, Seed = 5 };
        var whole = (await chat.CompleteChatAsync([new UserChatMessage(Prompt)], options)).Value;
        Assert.Equal(16, whole.ContentTokenLogProbabilities.Count);

        var text = new StringBuilder();
        var streamed = new List<ChatTokenLogProbabilityDetails>();
        int chunksWithLogProbs = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(Prompt)], options))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            streamed.AddRange(update.ContentTokenLogProbabilities);
            if (update.ContentTokenLogProbabilities.Count > 0) chunksWithLogProbs++;
        }
        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.True(chunksWithLogProbs > 1, "log-probabilities arrive with the text as it streams, not all at the end");
        Assert.Equal(whole.ContentTokenLogProbabilities.Count, streamed.Count);
        for (int i = 0; i < streamed.Count; i++)
        {
            var a = whole.ContentTokenLogProbabilities[i];
            var b = streamed[i];
            Assert.Equal(a.Token, b.Token);
            // The second request's prompt comes from the prefix cache the first one filled: equal to a fresh prefill ≤ 1e-5
            // (sums in another order), not bit for bit (docs/server.md).
            Assert.InRange(Math.Abs(a.LogProbability - b.LogProbability), 0, 1e-5);
            Assert.Equal(a.Utf8Bytes.GetValueOrDefault().ToArray(), b.Utf8Bytes.GetValueOrDefault().ToArray());
            Assert.Equal(3, b.TopLogProbabilities.Count);
            Assert.Equal(a.TopLogProbabilities.Select(t => t.Token), b.TopLogProbabilities.Select(t => t.Token));
            for (int j = 0; j < 3; j++) Assert.InRange(Math.Abs(a.TopLogProbabilities[j].LogProbability - b.TopLogProbabilities[j].LogProbability), 0, 1e-5);
            Assert.True(b.LogProbability <= b.TopLogProbabilities[0].LogProbability);
        }
    }

    [Fact]
    public async Task Completion_stream_chunks_join_into_the_non_streamed_logprobs()
    {
        string body = """{"model":"stories260K","prompt":"Once upon a time","max_tokens":12,"seed":9,"logprobs":2,"stop":["park"]}""";
        var (status, json, _) = await fixture.PostAsync("v1/completions", body);
        Assert.Equal(200, status);
        var choice = json.GetProperty("choices")[0];
        var whole = choice.GetProperty("logprobs");

        var (texts, events, done) = await fixture.StreamAsync("v1/completions", body.Replace("\"seed\":9", "\"seed\":9,\"stream\":true"));
        Assert.True(done);
        Assert.Equal(choice.GetProperty("text").GetString(), texts[0]);
        var tokens = new List<string>();
        var logProbs = new List<float>();
        var tops = new List<string>();
        var offsets = new List<int>();
        foreach (var e in events)
            foreach (var c in e.GetProperty("choices").EnumerateArray())
            {
                var lp = c.GetProperty("logprobs");
                Assert.Equal(JsonValueKind.Object, lp.ValueKind); // every chunk of a request that asked has the object (possibly empty)
                tokens.AddRange(lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!));
                logProbs.AddRange(lp.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetSingle()));
                tops.AddRange(lp.GetProperty("top_logprobs").EnumerateArray().Select(t => t.GetRawText()));
                offsets.AddRange(lp.GetProperty("text_offset").EnumerateArray().Select(t => t.GetInt32()));
            }
        Assert.Equal(whole.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!), tokens);
        Assert.Equal(whole.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetSingle()), logProbs);
        Assert.Equal(whole.GetProperty("top_logprobs").EnumerateArray().Select(t => t.GetRawText()), tops);
        Assert.Equal(whole.GetProperty("text_offset").EnumerateArray().Select(t => t.GetInt32()), offsets);
        Assert.Equal(choice.GetProperty("finish_reason").GetString(), events.SelectMany(e => e.GetProperty("choices").EnumerateArray())
            .Select(c => c.GetProperty("finish_reason")).Last(f => f.ValueKind == JsonValueKind.String).GetString());
    }

    [Fact]
    public async Task A_stream_that_did_not_ask_has_null_logprobs_in_every_chunk()
    {
        var (_, events, done) = await fixture.StreamAsync("v1/completions", """{"model":"stories260K","prompt":"Once upon a time","max_tokens":4,"seed":1,"stream":true}""");
        Assert.True(done);
        Assert.All(events.SelectMany(e => e.GetProperty("choices").EnumerateArray()), c => Assert.Equal(JsonValueKind.Null, c.GetProperty("logprobs").ValueKind));
    }
}
