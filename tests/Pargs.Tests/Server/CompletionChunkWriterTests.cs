using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>
/// The streamed events' bytes: <see cref="CompletionChunkWriter"/> (one writer reset onto the response's pipe per event)
/// against System.Text.Json's serializer writing the same objects with the server's options — an independent writer of
/// OpenAI's chunk shapes, byte for byte, over several events in one pipe (a writer not reset between events, a field
/// out of order or a text escaped differently shows).
/// </summary>
public sealed class CompletionChunkWriterTests
{
    static readonly JsonSerializerOptions Serializer = new() { Encoder = CompletionChunkWriter.Options.Encoder };

    // Quotes, backslashes, control characters, a line break (an SSE line break would split the event), HTML-sensitive
    // characters, non-ASCII and a surrogate pair: each escaped, or written as UTF-8, as the serializer does.
    static readonly string[] Texts = ["", " Tim", "\"quoted\" \\ back", "line\nbreak\r\ttab\u0001", "<b>&'</b>", "café – 東京 😀", new string('x', 5000)];

    static string Expected(string id, long created, string model, bool chat, int index, string text, string? finish, bool role)
    {
        var choice = new JsonObject { ["index"] = index };
        if (chat)
        {
            var delta = new JsonObject();
            if (role) delta["role"] = "assistant";
            if (role || text.Length > 0) delta["content"] = text;
            choice["delta"] = delta;
        }
        else choice["text"] = text;
        choice["logprobs"] = null;
        choice["finish_reason"] = finish;
        var chunk = new JsonObject
        {
            ["id"] = id, ["object"] = chat ? "chat.completion.chunk" : "text_completion", ["created"] = created, ["model"] = model,
            ["choices"] = new JsonArray(choice),
        };
        return "data: " + chunk.ToJsonString(Serializer) + "\n\n";
    }

    static string Written(Action<CompletionChunkWriter> write, string id, long created, string model, bool chat)
    {
        var pipe = new Pipe();
        write(new CompletionChunkWriter(pipe.Writer, id, created, model, chat));
        pipe.Writer.Complete();
        Assert.True(pipe.Reader.TryRead(out var result));
        return Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(result.Buffer));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Events_are_the_serializers_bytes(bool chat)
    {
        const string id = "cmpl-0123456789abcdef", model = "stories260K \"quoted\" é";
        const long created = 1_765_000_000;
        var expected = new StringBuilder();
        if (chat) expected.Append(Expected(id, created, model, chat, 0, "", null, role: true));
        for (int i = 0; i < Texts.Length; i++) expected.Append(Expected(id, created, model, chat, i % 3, Texts[i], i == Texts.Length - 1 ? "stop" : null, role: false));
        expected.Append("data: " + new JsonObject
        {
            ["id"] = id, ["object"] = chat ? "chat.completion.chunk" : "text_completion", ["created"] = created, ["model"] = model,
            ["choices"] = new JsonArray(),
            ["usage"] = new JsonObject { ["prompt_tokens"] = 7, ["completion_tokens"] = 40, ["total_tokens"] = 47 },
        }.ToJsonString(Serializer) + "\n\n");
        expected.Append("data: [DONE]\n\n");

        string written = Written(w =>
        {
            if (chat) w.Delta(0, "", null, role: true);
            for (int i = 0; i < Texts.Length; i++) w.Delta(i % 3, Texts[i], i == Texts.Length - 1 ? "stop" : null);
            w.Usage(7, 40);
            w.Done();
        }, id, created, model, chat);
        Assert.Equal(expected.ToString(), written);
    }

    [Fact]
    public void Completion_log_probabilities_continue_their_text_offsets_across_chunks()
    {
        var tokenizer = new Pargs.Benchmarks.IdTokenizer(512); // token 17's text is "<17>"
        const int once = 17, upon = 300;
        string written = Written(w =>
        {
            int offset = 0;
            w.Delta(0, "<17>", null, false, [new TokenLogProbs(once, -0.5f, [(once, -0.5f)])], tokenizer, false, ref offset);
            Assert.Equal(tokenizer.Decode([once]).Length, offset);
            w.Delta(0, "<300>", "length", false, [new TokenLogProbs(upon, -1.25f, [(upon, -1.25f)])], tokenizer, false, ref offset);
        }, "cmpl-1", 1, "m", chat: false);
        var events = written.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToArray();
        Assert.Equal(2, events.Length);
        var first = events[0].GetProperty("choices")[0].GetProperty("logprobs");
        var second = events[1].GetProperty("choices")[0].GetProperty("logprobs");
        Assert.Equal(0, first.GetProperty("text_offset")[0].GetInt32());
        Assert.Equal(tokenizer.Decode([once]).Length, second.GetProperty("text_offset")[0].GetInt32());
        Assert.Equal(-1.25f, second.GetProperty("token_logprobs")[0].GetSingle());
        Assert.Equal("length", events[1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }
}
