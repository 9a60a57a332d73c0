using System.Text;
using System.Text.Json;
using Pargs.Tokenizers;

namespace Pargs.Server;

/// <summary>
/// Writes per-token log-probabilities in OpenAI's two shapes: completions' (<c>tokens</c>, <c>token_logprobs</c>,
/// <c>top_logprobs</c> as {token: logprob}, <c>text_offset</c>) and chat's (<c>content</c>: [{token, logprob, bytes,
/// top_logprobs: [{token, logprob, bytes}]}]). A token is its text, or "token_id:N" with vLLM's
/// <c>return_tokens_as_token_ids</c> (the form a remote engine reads: no two tokens share it). Numbers are float32 written
/// in their shortest round-trippable form, so a client that parses them back to float32 gets the server's bits exactly;
/// −∞ (a token of probability 0) is written as −9999.0, as vLLM writes it, because JSON has no infinity.
/// </summary>
public static class LogProbsJson
{
    /// <summary>What −∞ travels as.</summary>
    public const float NegativeInfinity = -9999.0f;

    static readonly JsonEncodedText FieldName = JsonEncodedText.Encode("logprobs");

    /// <summary>
    /// A choice's "logprobs" field: null when not asked for (<paramref name="tokens"/> null), else OpenAI's completions or
    /// chat shape. Returns the text offset after it (completions' offsets run on across a stream's chunks).
    /// </summary>
    public static int WriteField(Utf8JsonWriter w, IReadOnlyList<TokenLogProbs>? tokens, ITokenizer? tokenizer, bool chat, bool tokensAsIds, int textOffset)
    {
        if (tokens is null) { w.WriteNull(FieldName); return textOffset; }
        w.WritePropertyName(FieldName);
        if (!chat) return WriteCompletion(w, tokens, tokenizer!, tokensAsIds, textOffset);
        WriteChat(w, tokens, tokenizer!, tokensAsIds);
        return textOffset;
    }

    /// <summary>
    /// Completions' shape; <paramref name="textOffset"/> is where the first token's text starts in the completion (a streamed
    /// chunk continues the offsets of the chunks before it). Returns the offset after the last token.
    /// </summary>
    public static int WriteCompletion(Utf8JsonWriter w, IReadOnlyList<TokenLogProbs> tokens, ITokenizer tokenizer, bool tokensAsIds, int textOffset = 0)
    {
        w.WriteStartObject();
        Span<byte> idName = stackalloc byte[IdNameMaxBytes];
        w.WriteStartArray("tokens");
        foreach (var t in tokens)
            if (tokensAsIds) w.WriteStringValue(IdName(t.Token, idName));
            else w.WriteStringValue(Text(t.Token, tokenizer));
        w.WriteEndArray();
        w.WriteStartArray("token_logprobs");
        foreach (var t in tokens) Number(w, t.LogProb);
        w.WriteEndArray();
        w.WriteStartArray("top_logprobs");
        foreach (var t in tokens)
        {
            w.WriteStartObject();
            if (tokensAsIds) WriteTopById(w, t.Top, idName);
            else
            {
                var seen = new HashSet<string>();
                foreach (var (id, logProb) in t.Top)
                {
                    string name = Text(id, tokenizer);
                    if (!seen.Add(name)) continue; // two ids with one text: the more likely one stands (a JSON object has one value per key)
                    w.WritePropertyName(name);
                    Number(w, logProb);
                }
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("text_offset");
        int offset = textOffset;
        foreach (var t in tokens)
        {
            w.WriteNumberValue(offset);
            offset += Text(t.Token, tokenizer).Length;
        }
        w.WriteEndArray();
        w.WriteEndObject();
        return offset;
    }

    public static void WriteChat(Utf8JsonWriter w, IReadOnlyList<TokenLogProbs> tokens, ITokenizer tokenizer, bool tokensAsIds)
    {
        w.WriteStartObject();
        w.WriteStartArray("content");
        foreach (var t in tokens)
        {
            w.WriteStartObject();
            Entry(w, t.Token, t.LogProb, tokenizer, tokensAsIds);
            w.WriteStartArray("top_logprobs");
            foreach (var (id, logProb) in t.Top)
            {
                w.WriteStartObject();
                Entry(w, id, logProb, tokenizer, tokensAsIds);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    static void Entry(Utf8JsonWriter w, int id, float logProb, ITokenizer tokenizer, bool tokensAsIds)
    {
        if (tokensAsIds)
        {
            Span<byte> name = stackalloc byte[IdNameMaxBytes];
            w.WriteString("token", IdName(id, name));
        }
        else w.WriteString("token", Text(id, tokenizer));
        w.WritePropertyName("logprob");
        Number(w, logProb);
        w.WriteStartArray("bytes");
        foreach (var b in Bytes(id, tokenizer)) w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    /// <summary>A float32 in its shortest round-trippable form (.NET's float formatting), −∞ as <see cref="NegativeInfinity"/>.</summary>
    public static void Number(Utf8JsonWriter w, float value)
    {
        if (float.IsNegativeInfinity(value) || value < NegativeInfinity) value = NegativeInfinity;
        if (!float.IsFinite(value)) throw new PargsException($"the language model gave the log-probability {value}: its logits are not finite");
        w.WriteNumberValue(value);
    }

    /// <summary>"token_id:" and the digits of an int (at most 11 characters with a sign).</summary>
    const int IdNameMaxBytes = 20;

    /// <summary>
    /// "token_id:N" as UTF-8 in <paramref name="buffer"/>. WHY: a remote steering client's every step answer carries k + 1 of
    /// these (issue 18); written from the stack they cost no string each.
    /// </summary>
    static ReadOnlySpan<byte> IdName(int id, Span<byte> buffer)
    {
        "token_id:"u8.CopyTo(buffer);
        System.Buffers.Text.Utf8Formatter.TryFormat(id, buffer["token_id:".Length..], out int digits);
        return buffer[..("token_id:".Length + digits)];
    }

    /// <summary>
    /// Completions' {"token_id:N": logprob} of one position. Distinct ids have distinct names, so no set of names is kept;
    /// a repeated id (which no backend sends) keeps its first, more likely, value as the text path keeps a repeated text's.
    /// </summary>
    static void WriteTopById(Utf8JsonWriter w, (int Token, float LogProb)[] top, Span<byte> name)
    {
        for (int i = 0; i < top.Length; i++)
        {
            bool repeated = false;
            for (int j = 0; j < i && !repeated; j++) repeated = top[j].Token == top[i].Token;
            if (repeated) continue;
            w.WritePropertyName(IdName(top[i].Token, name));
            Number(w, top[i].LogProb);
        }
    }

    static string Text(int id, ITokenizer tokenizer)
    {
        var bytes = tokenizer.TokenBytes(id);
        return bytes.Length > 0 ? Encoding.UTF8.GetString(bytes) : tokenizer.Decode([id], skipSpecial: false);
    }

    static byte[] Bytes(int id, ITokenizer tokenizer)
    {
        var bytes = tokenizer.TokenBytes(id);
        return bytes.Length > 0 ? bytes : Encoding.UTF8.GetBytes(tokenizer.Decode([id], skipSpecial: false));
    }

    /// <summary>The <paramref name="count"/> most likely tokens of a raw distribution, most likely first (ties: the lower id first; NaN above everything, reported, not hidden).</summary>
    public static (int Token, float LogProb)[] Top(ReadOnlySpan<float> logProbs, int count)
    {
        count = Math.Min(count, logProbs.Length);
        if (count == 0) return [];
        // The decoders' host top-k (one pass; eight tokens at a time skipped against the k-th best, which almost every token of a
        // long vocabulary loses to): the min-heap it replaced compared every token through a comparer delegate.
        Span<float> values = count <= 64 ? stackalloc float[count] : new float[count];
        Span<long> ids = count <= 64 ? stackalloc long[count] : new long[count];
        Pargs.Decoding.DecodingSteps.TopK(logProbs, 1, logProbs.Length, count, values, ids);
        var top = new (int Token, float LogProb)[count];
        for (int j = 0; j < count; j++) top[j] = ((int)ids[j], values[j]);
        return top;
    }
}
