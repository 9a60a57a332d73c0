using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Engine.Remote;

/// <summary>What a server says about its model, where it says it.</summary>
public sealed record RemoteModelFacts(string? Model, int? VocabSize, int? ContextLength);

/// <summary>
/// One server protocol of a remote language model: the body of a step request (a token-id prefix → its next token's
/// top-k log-probabilities), how to read the answer, and how to ask the server about its model and tokenizer. Every
/// step asks for the raw distribution at temperature 1 (no truncation, no penalties; pargs serve, whose log-probs are raw
/// whatever the temperature, is asked for temperature 0: <see cref="OpenAiCompletionsClient"/>) and one new token.
/// </summary>
public abstract class RemoteLmClient
{
    protected RemoteLmClient(Uri baseUrl) => BaseUrl = baseUrl;

    public Uri BaseUrl { get; }
    /// <summary>Where step requests go (built once: every row's every step posts there).</summary>
    public abstract Uri StepUrl { get; }
    /// <summary>The server setting that bounds how many log-probabilities it returns (named when it returns fewer than asked).</summary>
    public abstract string TopKLimitHint { get; }

    /// <summary>
    /// A step request's body: the prefix's ids and the protocol's settings for one token and its top-k, written straight to
    /// UTF-8 in one array that is sent as it is (no copy of the finished body, no array of the prefix to write it from).
    /// </summary>
    public ReadOnlyMemory<byte> StepBody(ReadOnlySpan<int> prefix, int k)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(StepBodySizeHint(prefix.Length));
        var w = Writer(buffer);
        w.WriteStartObject();
        WriteStep(w, prefix, k);
        w.WriteEndObject();
        w.Flush();
        return buffer.WrittenMemory;
    }

    /// <summary>Writes the fields of a step body (<see cref="StepBody"/> opens and closes the object).</summary>
    protected abstract void WriteStep(Utf8JsonWriter w, ReadOnlySpan<int> prefix, int k);

    /// <summary>Room for a body over <paramref name="ids"/> ids: ≤ 6 digits and a comma each, and the protocol's fields.</summary>
    protected virtual int StepBodySizeHint(int ids) => 192 + 7 * ids;

    [ThreadStatic] static Utf8JsonWriter? stepWriter;

    /// <summary>This thread's writer, reset onto <paramref name="buffer"/>: a session's steps are written on its decoding thread, one at a time.</summary>
    static Utf8JsonWriter Writer(System.Buffers.IBufferWriter<byte> buffer)
    {
        if (stepWriter is null) return stepWriter = new Utf8JsonWriter(buffer);
        stepWriter.Reset(buffer);
        return stepWriter;
    }

    /// <summary>The answer's (id, log p) pairs of the next token, in any order, as the server sent them.</summary>
    protected abstract IEnumerable<(long Id, float LogProb)> ReadTopLogProbs(JsonElement root);

    /// <summary>The server's model facts (model name, vocabulary, context) from its own endpoints.</summary>
    public abstract Task<RemoteModelFacts> DescribeAsync(RemoteHttp http, string? model);

    /// <summary>The server's ids for <paramref name="text"/> (special tokens added as its tokenizer adds them), or null without a tokenize endpoint.</summary>
    public abstract Task<int[]?> TokenizeAsync(RemoteHttp http, string? model, string text);

    /// <summary>The <paramref name="k"/> most likely (id, log p) of an answer, most likely first; fewer than k is an error naming the server's limit.</summary>
    public (long[] Ids, float[] LogProbs) ReadStep(JsonElement root, int k, int vocabSize)
    {
        var pairs = new List<(long Id, float LogProb)>(k + 1);
        try
        {
            foreach (var pair in ReadTopLogProbs(root))
            {
                // Duplicates would count twice; vLLM adds the sampled token to its top-k, so more than k may come.
                bool seen = false;
                foreach (var p in pairs) seen |= p.Id == pair.Id;
                if (!seen) pairs.Add(pair);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException or IndexOutOfRangeException or JsonException)
        {
            throw new PargsException($"{StepUrl}: the answer is not in the expected shape ({e.Message}): {Shorten(root.GetRawText())}");
        }
        if (pairs.Count < k)
            throw new PargsException($"{StepUrl}: the server returned {pairs.Count} log-probabilities where {k} were asked; {TopKLimitHint}");
        foreach (var (id, logProb) in pairs)
        {
            if (id < 0 || id >= vocabSize)
                throw new PargsException($"{StepUrl}: the server returned token id {id}, outside the local tokenizer's {vocabSize} tokens: the tokenizers differ");
            if (float.IsNaN(logProb) || logProb > 1e-3f)
                throw new PargsException($"{StepUrl}: the server returned the log-probability {logProb} for token {id}, which is not a log-probability");
        }
        // Most likely first, ties by id (a stable order whatever order the server wrote them in).
        pairs.Sort((a, b) => a.LogProb != b.LogProb ? b.LogProb.CompareTo(a.LogProb) : a.Id.CompareTo(b.Id));
        var ids = new long[k];
        var logProbs = new float[k];
        for (int i = 0; i < k; i++) (ids[i], logProbs[i]) = pairs[i];
        return (ids, logProbs);
    }

    protected static byte[] Json(JsonObject body) => JsonSerializer.SerializeToUtf8Bytes(body);

    protected static JsonArray Ids(int[] ids) => new(ids.Select(i => (JsonNode)i).ToArray());

    protected static void WriteIds(Utf8JsonWriter w, string name, ReadOnlySpan<int> ids)
    {
        w.WriteStartArray(name);
        foreach (int id in ids) w.WriteNumberValue(id);
        w.WriteEndArray();
    }

    protected static string Shorten(string text) => text.Length > 300 ? text[..300] + "…" : text;

    protected static int? IntOrNull(JsonElement parent, string name)
        => parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) ? n : null;

    /// <summary>A float32 read as float32 (not via double), so the server's shortest round-trip text gives back its exact bits.</summary>
    protected static float Float(JsonElement value) => value.ValueKind == JsonValueKind.Number
        ? float.Parse(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(value), NumberStyles.Float, CultureInfo.InvariantCulture)
        : throw new FormatException($"expected a number, got {value.ValueKind}");

    protected static int[] IntArray(JsonElement array, Uri url)
    {
        if (array.ValueKind != JsonValueKind.Array) throw new PargsException($"{url}: expected an array of token ids, got {array.ValueKind}");
        return array.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.Number && t.TryGetInt32(out int id) ? id
            : throw new PargsException($"{url}: expected a token id, got {Shorten(t.GetRawText())}")).ToArray();
    }

    public static RemoteLmClient For(RemoteLmProtocol protocol, Uri baseUrl) => protocol switch
    {
        RemoteLmProtocol.OpenAi => new OpenAiCompletionsClient(baseUrl),
        RemoteLmProtocol.LlamaCpp => new LlamaCppClient(baseUrl),
        RemoteLmProtocol.SgLang => new SgLangClient(baseUrl),
        _ => throw new ArgumentOutOfRangeException(nameof(protocol)),
    };
}
