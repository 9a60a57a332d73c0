#pragma warning disable OPENAI001
using System.ClientModel;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Server;
using Pargs.Tests.Models.Encoders;

namespace Pargs.Tests.Server;

/// <summary>
/// An encoder classifier (a tiny random BERT folder in the real format, read as pairs) served by pargs serve: as the guide
/// of PARGS and Best-of-N requests through the OpenAI SDK (the text equals the library's with the same encoder), and as
/// /v1/rewards' model (texts read as one sequence, {prompt, response} pairs as the model's saved input setting).
/// </summary>
public sealed class ServedEncoderRewardModelTests : IAsyncLifetime
{
    readonly TempDir dir = new();
    CausalLM lm = null!;
    EncoderRewardModel encoder = null!;
    ServedModels models = null!;
    PargsServer server = null!;

    public async Task InitializeAsync()
    {
        var config = TinyEncoders.Bert();
        config[EncoderInputs.ConfigField] = "pair";
        config[RewardLabel.ConfigField] = "POSITIVE";
        string folder = TinyEncoders.Write(dir.File("bert"), config, seed: 4);
        lm = CausalLM.Load(TestPaths.Stories260KGguf);
        encoder = EncoderRewardModel.Load(folder);
        // The server gets its own copy of the encoder: its worker and this test's reference runs must not share one.
        models = new ServedModels().AddRewardModel("bert", EncoderRewardModel.Load(folder)).AddLanguageModel("stories260K", CausalLM.Load(TestPaths.Stories260KGguf));
        server = await PargsServer.StartAsync(models, new PargsServerOptions { Port = 0, Limits = ServerFixture.Limits });
    }

    public async Task DisposeAsync()
    {
        await server.DisposeAsync();
        models.Dispose();
        encoder.Dispose();
        lm.Dispose();
        dir.Dispose();
    }

    ChatClient Chat() => new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Url, "v1"), NetworkTimeout = TimeSpan.FromSeconds(60) })
        .GetChatClient("stories260K");

    [Theory]
    [InlineData("pargs")]
    [InlineData("best-of-n")]
    public async Task An_encoder_guides_requests_through_the_sdk_as_in_the_library(string method)
    {
        string request = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = "stories260K", ["messages"] = new[] { new { role = "user", content = "Tim was sad because" } }, ["max_tokens"] = 10, ["seed"] = 2,
            ["method"] = method, ["k"] = 4, ["reward_model"] = "bert",
        });
        ClientResult result = await Chat().CompleteChatAsync(BinaryContent.Create(BinaryData.FromString(request)));
        string text = JsonDocument.Parse(result.GetRawResponse().Content.ToString()).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

        string prompt = models.LanguageModel("stories260K").ChatTemplate.RenderPrompt([new Pargs.Data.ChatMessage(Pargs.Data.ChatMessage.User, "Tim was sad because")]);
        var options = new DecodingOptions
        {
            Method = DecodingMethods.Parse(method).Options(new MethodSettings { K = 4, W = 1.0, Temperature = 1.0, TopP = 1.0, N = 4 }), Seed = 2, MaxNewTokens = 10,
            AddSpecialTokens = !models.LanguageModel("stories260K").ChatTemplate.RendersSpecialTokens,
        };
        Assert.Equal(TextGenerator.Generate(lm, encoder, [prompt], options)[0].Output, text);
    }

    [Fact]
    public async Task Rewards_reads_texts_as_one_sequence_and_pairs_as_the_model_was_trained()
    {
        using var http = new HttpClient();
        string body = """{"model":"bert","input":["Once upon a time a cat sat.",{"prompt":"Once upon a time","response":" a cat sat."}]}""";
        using var response = await http.PostAsync(new Uri(server.Url, "v1/rewards"), new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(200, (int)response.StatusCode);
        var data = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("data");
        float text = data[0].GetProperty("reward").GetSingle();
        float pair = data[1].GetProperty("reward").GetSingle();
        Assert.Equal(encoder.Score([encoder.EncoderTokenizer.Encode("Once upon a time a cat sat.", null, addSpecialTokens: true)])[0], text, 1e-5f);
        Assert.Equal(encoder.Score([("Once upon a time", " a cat sat.")])[0], pair, 1e-5f);
        Assert.NotEqual(text, pair); // the pair's second segment (token types, [SEP]) is read as a pair

        // Beyond the encoder's 64 positions: a 400 naming the input, not a 500.
        string tooLong = JsonSerializer.Serialize(new { model = "bert", input = string.Join(' ', Enumerable.Repeat("cat", 200)) });
        using var refused = await http.PostAsync(new Uri(server.Url, "v1/rewards"), new StringContent(tooLong, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, (int)refused.StatusCode);
        Assert.Contains("input 0", await refused.Content.ReadAsStringAsync());
    }
}
