#pragma warning disable OPENAI001 // Seed and the protocol methods are marked experimental in the SDK
using System.ClientModel;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;
using System.ClientModel.Primitives;
using Pargs.Decoding;
using Pargs.Server;
using Pargs.Tests.Cli;

namespace Pargs.Tests.Server;

/// <summary>
/// The official OpenAI .NET SDK and Microsoft.Extensions.AI.OpenAI against `pargs serve` on loopback: answers equal
/// the library's in-process output for the same seed and method, streamed or not, and errors arrive as the SDK's
/// exceptions.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class OpenAiSdkTests(ServerFixture fixture)
{
    const string Prompt = "Tim was sad because";

    OpenAIClient Client(string key = "unused") => new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = fixture.V1, NetworkTimeout = TimeSpan.FromSeconds(60) });

    /// <summary>With no method, the server samples as OpenAI does: nucleus over the whole distribution (top_p 1), temperature 1.</summary>
    static DecodingOptions DefaultSampling(int seed, int maxTokens, double temperature = 1.0, double topP = 1.0)
        => new() { Method = new Pargs.Decoding.Methods.TopPOptions { P = topP, Temperature = temperature }, Seed = seed, MaxNewTokens = maxTokens };

    [Fact]
    public async Task Models_are_listed_by_name()
    {
        var models = await Client().GetOpenAIModelClient().GetModelsAsync();
        Assert.Equal(new[] { ServerFixture.Model, ServerFixture.RewardModelName }, models.Value.Select(m => m.Id).ToArray());
    }

    [Fact]
    public async Task Chat_completion_equals_the_library_and_its_stream()
    {
        var chat = Client().GetChatClient(ServerFixture.Model);
        var options = new ChatCompletionOptions { Seed = 7, MaxOutputTokenCount = 24, Temperature = 0.8f };
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage(Prompt)], options);
        string expected = fixture.Reference(Prompt, DefaultSampling(7, 24, temperature: 0.8f));
        Assert.Equal(expected, completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(24, completion.Usage.OutputTokenCount);
        Assert.Equal(fixture.Lm.Tokenizer!.Encode(Prompt, addBos: true).Length, completion.Usage.InputTokenCount);

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(Prompt)], options))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            finish ??= update.FinishReason;
        }
        Assert.Equal(expected, streamed.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
    }

    [Fact]
    public async Task Legacy_completion_through_the_sdk_equals_the_library()
    {
        // The SDK's completions client is internal in 2.x; its pipeline (auth, retries, errors) sends the request.
        var pipeline = Client().Pipeline;
        using var message = pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(fixture.V1 + "/completions");
        message.Request.Headers.Set("Content-Type", "application/json");
        message.Request.Content = BinaryContent.Create(BinaryData.FromString(
            """{"model":"stories260K","prompt":"Once upon a time","max_tokens":20,"seed":3,"top_p":0.9}"""));
        await pipeline.SendAsync(message);
        if (message.Response!.IsError) throw new ClientResultException(message.Response);
        var json = JsonDocument.Parse(message.Response.Content.ToString()).RootElement;
        Assert.Equal("text_completion", json.GetProperty("object").GetString());
        string text = json.GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.Equal(fixture.Reference("Once upon a time", DefaultSampling(3, 20, topP: 0.9)), text);
        Assert.Equal(20, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    /// <summary>PARGS through extra body fields, the way SDK users send vLLM's: streamed = not streamed = library = `pargs generate`.</summary>
    [Fact]
    public async Task Guided_decoding_through_extra_body_equals_library_and_cli()
    {
        var chat = Client().GetChatClient(ServerFixture.Model);
        string request = """{"model":"stories260K","messages":[{"role":"user","content":"Tim was sad because"}],"max_tokens":24,"seed":1,"method":"pargs","w":2,"k":10,"reward_model":"stories260K-partial-rm"}""";
        ClientResult result = await chat.CompleteChatAsync(BinaryContent.Create(BinaryData.FromString(request)));
        var json = JsonDocument.Parse(result.GetRawResponse().Content.ToString()).RootElement;
        string text = json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

        var options = new DecodingOptions { Method = new Pargs.Decoding.Methods.PargsOptions { W = 2, K = 10 }, Seed = 1, MaxNewTokens = 24 };
        Assert.Equal(fixture.Reference(Prompt, options), text);

        var (streamed, _, done) = await fixture.StreamAsync("v1/chat/completions", request.Replace("\"seed\":1", "\"seed\":1,\"stream\":true"));
        Assert.True(done);
        Assert.Equal(text, streamed[0]);

        var cli = PargsCli.Run("generate", "--method", "pargs", "-w", "2", "-k", "10", "--seed", "1", "--max-new-tokens", "24", "--prompt", Prompt);
        Assert.True(cli.ExitCode == 0, cli.ToString());
        Assert.Equal(Prompt + text + "\n", cli.Stdout);
    }

    [Fact]
    public async Task Errors_surface_as_sdk_exceptions()
    {
        var unknown = Client().GetChatClient("no-such-model");
        var e = await Assert.ThrowsAsync<ClientResultException>(() => unknown.CompleteChatAsync([new UserChatMessage(Prompt)]));
        Assert.Equal(404, e.Status);
        Assert.Contains("no-such-model", e.Message);

        var chat = Client().GetChatClient(ServerFixture.Model);
        var tooLong = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage(Prompt)], new ChatCompletionOptions { MaxOutputTokenCount = 100000 }));
        Assert.Equal(400, tooLong.Status);
        Assert.Contains("max_completion_tokens", tooLong.Message);

        // Log-probabilities are bounded as vLLM bounds them (--max-logprobs).
        var logprobs = await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var _ in chat.CompleteChatStreamingAsync([new UserChatMessage(Prompt)], new ChatCompletionOptions { IncludeLogProbabilities = true, TopLogProbabilityCount = 65, MaxOutputTokenCount = 4 })) { }
        });
        Assert.Equal(400, logprobs.Status);
        Assert.Contains("top_logprobs", logprobs.Message);
    }

    /// <summary>Microsoft.Extensions.AI's OpenAI chat client against the server = PargsChatClient in process.</summary>
    [Fact]
    public async Task Extensions_ai_client_over_http_equals_in_process_chat_client()
    {
        IChatClient remote = Client().GetChatClient(ServerFixture.Model).AsIChatClient();
        var options = new ChatOptions { Seed = 11, MaxOutputTokens = 20, Temperature = 0.7f, TopP = 0.95f };
        var messages = new[] { new Microsoft.Extensions.AI.ChatMessage(ChatRole.System, "A story."), new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, "Lily went to the park") };
        var overHttp = await remote.GetResponseAsync(messages, options);

        using var local = new PargsChatClient(fixture.Lm, fixture.Rm);
        var inProcess = await local.GetResponseAsync(messages, options);
        Assert.Equal(inProcess.Text, overHttp.Text);
        Assert.Equal(20, overHttp.Usage?.OutputTokenCount);
        Assert.Equal(inProcess.Usage?.InputTokenCount, overHttp.Usage?.InputTokenCount);

        var streamed = new StringBuilder();
        await foreach (var update in remote.GetStreamingResponseAsync(messages, options)) streamed.Append(update.Text);
        Assert.Equal(inProcess.Text, streamed.ToString());
    }

    [Fact]
    public async Task Chat_client_takes_guided_settings_from_additional_properties()
    {
        using IChatClient local = new PargsChatClient(fixture.Lm, fixture.Rm);
        var options = new ChatOptions
        {
            Seed = 1, MaxOutputTokens = 24,
            AdditionalProperties = new() { ["method"] = "pargs", ["w"] = 2.0, ["k"] = 10 },
        };
        var response = await local.GetResponseAsync(Prompt, options);
        var expected = fixture.Reference(Prompt, new DecodingOptions { Method = new Pargs.Decoding.Methods.PargsOptions { W = 2, K = 10 }, Seed = 1, MaxNewTokens = 24 });
        Assert.Equal(expected, response.Text);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Length, response.FinishReason);

        var streamed = new StringBuilder();
        await foreach (var update in local.GetStreamingResponseAsync(Prompt, options)) streamed.Append(update.Text);
        Assert.Equal(expected, streamed.ToString());

        var refused = await Assert.ThrowsAsync<PargsException>(() => local.GetResponseAsync(Prompt, new ChatOptions { FrequencyPenalty = 0.5f }));
        Assert.Contains("FrequencyPenalty", refused.Message);
        var ignored = await Assert.ThrowsAsync<PargsException>(() => local.GetResponseAsync(Prompt, new ChatOptions { AdditionalProperties = new() { ["method"] = "greedy", ["w"] = 1.0 } }));
        Assert.Contains("'w' has no effect with method 'greedy'", ignored.Message);
    }
}
