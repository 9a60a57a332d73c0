using System.Buffers;
using System.IO.Pipelines;
using System.Text.Encodings.Web;
using System.Text.Json;
using Pargs.Tokenizers;

namespace Pargs.Server;

/// <summary>
/// Writes one streamed completion's server-sent events (<c>data: {chunk}\n\n</c>) straight into the response's pipe:
/// OpenAI's <c>text_completion</c> / <c>chat.completion.chunk</c> objects, the usage chunk and <c>data: [DONE]</c>.
/// WHY: an event is written once per streamed token, so it is built with one <see cref="Utf8JsonWriter"/> reset onto the
/// pipe for each event and the request's constant fields (id, object, model) escaped once — where building it went
/// through a MemoryStream, a new writer, two closures and a byte[] copied into the pipe (~1.3 KB allocated per event).
/// The bytes are those the buffered writer wrote (same writer options; tested against System.Text.Json's serializer).
/// Nothing is sent until the caller flushes the pipe.
/// </summary>
public sealed class CompletionChunkWriter
{
    /// <summary>The server's JSON options: UTF-8 text is written as is, not as \uXXXX escapes (what OpenAI's server sends).</summary>
    public static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static readonly JsonEncodedText IdName = JsonEncodedText.Encode("id"), ObjectName = JsonEncodedText.Encode("object"),
        CreatedName = JsonEncodedText.Encode("created"), ModelName = JsonEncodedText.Encode("model"), ChoicesName = JsonEncodedText.Encode("choices"),
        IndexName = JsonEncodedText.Encode("index"), DeltaName = JsonEncodedText.Encode("delta"), RoleName = JsonEncodedText.Encode("role"),
        ContentName = JsonEncodedText.Encode("content"), TextName = JsonEncodedText.Encode("text"),
        FinishReasonName = JsonEncodedText.Encode("finish_reason"), Assistant = JsonEncodedText.Encode("assistant");

    readonly PipeWriter pipe;
    readonly Utf8JsonWriter json;
    readonly JsonEncodedText id, type, model;
    readonly long created;
    readonly bool chat;

    public CompletionChunkWriter(PipeWriter pipe, string id, long created, string model, bool chat)
    {
        this.pipe = pipe;
        json = new Utf8JsonWriter(pipe, Options);
        this.id = JsonEncodedText.Encode(id, Options.Encoder);
        this.model = JsonEncodedText.Encode(model, Options.Encoder);
        type = JsonEncodedText.Encode(chat ? "chat.completion.chunk" : "text_completion");
        this.created = created;
        this.chat = chat;
    }

    /// <summary>One choice's chunk without log-probabilities (see the overload below).</summary>
    public void Delta(int index, string text, string? finishReason, bool role = false)
    {
        int noOffset = 0;
        Delta(index, text, finishReason, role, null, null, false, ref noOffset);
    }

    /// <summary>
    /// One choice's chunk: its new text (chat: the delta's content, left out when empty unless <paramref name="role"/> opens
    /// the message), its log-probabilities when the request asked for them (<paramref name="logProbs"/> non-null; a
    /// completion's text offsets continue from <paramref name="textOffset"/>, which is advanced), its finish reason on its last chunk.
    /// </summary>
    public void Delta(int index, string text, string? finishReason, bool role, IReadOnlyList<TokenLogProbs>? logProbs, ITokenizer? tokenizer, bool tokensAsIds, ref int textOffset)
    {
        Begin();
        json.WriteStartArray(ChoicesName);
        json.WriteStartObject();
        json.WriteNumber(IndexName, index);
        if (chat)
        {
            json.WriteStartObject(DeltaName);
            if (role) json.WriteString(RoleName, Assistant);
            if (role || text.Length > 0) json.WriteString(ContentName, text);
            json.WriteEndObject();
        }
        else json.WriteString(TextName, text);
        textOffset = LogProbsJson.WriteField(json, logProbs, tokenizer, chat, tokensAsIds, textOffset);
        if (finishReason is null) json.WriteNull(FinishReasonName); else json.WriteString(FinishReasonName, finishReason);
        json.WriteEndObject();
        json.WriteEndArray();
        End();
    }

    /// <summary><c>stream_options.include_usage</c>'s last chunk: no choices, the request's token counts.</summary>
    public void Usage(int promptTokens, int completionTokens)
    {
        Begin();
        json.WriteStartArray(ChoicesName);
        json.WriteEndArray();
        WriteUsage(json, promptTokens, completionTokens);
        End();
    }

    /// <summary>The stream's end marker.</summary>
    public void Done() => pipe.Write("data: [DONE]\n\n"u8);

    public static void WriteUsage(Utf8JsonWriter w, int promptTokens, int completionTokens)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", promptTokens);
        w.WriteNumber("completion_tokens", completionTokens);
        w.WriteNumber("total_tokens", promptTokens + completionTokens);
        w.WriteEndObject();
    }

    void Begin()
    {
        pipe.Write("data: "u8);
        json.Reset(pipe);
        json.WriteStartObject();
        json.WriteString(IdName, id);
        json.WriteString(ObjectName, type);
        json.WriteNumber(CreatedName, created);
        json.WriteString(ModelName, model);
    }

    void End()
    {
        json.WriteEndObject();
        json.Flush(); // advances the pipe past the JSON; nothing is sent before the caller's flush
        pipe.Write("\n\n"u8);
    }
}
