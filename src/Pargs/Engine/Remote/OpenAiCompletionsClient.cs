using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Engine.Remote;

/// <summary>
/// OpenAI-compatible <c>POST /v1/completions</c> as vLLM serves it (and <c>pargs serve</c>):
/// <code>
///   {"model": M, "prompt": [ids], "max_tokens": 1, "temperature": 1, "logprobs": k, "return_tokens_as_token_ids": true}
///   → {"choices": [{"logprobs": {"top_logprobs": [{"token_id:17": -0.51, …}], …}, …}]}
/// </code>
/// vLLM (docs and <c>vllm/entrypoints/openai/protocol.py</c>, v0.10–v0.11) writes the top-k of the token's position as an
/// object whose keys are "token_id:N" with <c>return_tokens_as_token_ids</c>, and adds the sampled token, so k or k+1
/// entries come back. Since v0.10 vLLM's <c>--logprobs-mode</c> defaults to <c>raw_logprobs</c>: the model's distribution
/// before temperature, penalties and top-k/top-p — what guidance needs; a server started with a <c>processed_*</c> mode
/// returns a distorted distribution (docs/remote.md). Its <c>--max-logprobs</c> (default 20) bounds k.
/// <para>
/// To <c>pargs serve</c> (its model card carries <c>pargs_kind</c>) a step asks for temperature 0 instead: its
/// log-probabilities are the raw distribution whatever the request's temperature (docs/remote.md), and the one token it
/// generates — which the client discards — then costs an argmax, not a nucleus draw over the whole vocabulary (a radix
/// sort and two passes of exp per row on its worker thread: a quarter of that thread's CPU on the 15M shape).
/// </para>
/// </summary>
public sealed class OpenAiCompletionsClient(Uri baseUrl) : RemoteLmClient(baseUrl)
{
    string? model;
    bool pargsServe;

    /// <summary>Whether the server is <c>pargs serve</c> (it marks its model cards with <c>pargs_kind</c>): steps are then greedy.</summary>
    public bool IsPargsServe => pargsServe;

    public override Uri StepUrl { get; } = new(baseUrl, "v1/completions");

    public override string TopKLimitHint
        => "vLLM returns at most --max-logprobs per token (default 20): start it with --max-logprobs at least k (pargs serve allows up to 64)";

    protected override void WriteStep(Utf8JsonWriter w, ReadOnlySpan<int> prefix, int k)
    {
        w.WriteString("model", model ?? throw new InvalidOperationException("describe the server first"));
        WriteIds(w, "prompt", prefix);
        w.WriteNumber("max_tokens", 1);
        w.WriteNumber("temperature", pargsServe ? 0.0 : 1.0);
        w.WriteNumber("logprobs", k);
        w.WriteBoolean("return_tokens_as_token_ids", true);
    }

    protected override int StepBodySizeHint(int ids) => 192 + (model?.Length ?? 0) + 7 * ids;

    protected override IEnumerable<(long Id, float LogProb)> ReadTopLogProbs(JsonElement root)
    {
        var choice = root.GetProperty("choices")[0];
        var logprobs = choice.GetProperty("logprobs");
        if (logprobs.ValueKind != JsonValueKind.Object) throw new FormatException("choices[0].logprobs is missing: the server ignored 'logprobs'");
        var first = logprobs.GetProperty("top_logprobs")[0];
        foreach (var entry in first.EnumerateObject())
        {
            string name = entry.Name;
            if (!name.StartsWith("token_id:", StringComparison.Ordinal)
                || !long.TryParse(name.AsSpan("token_id:".Length), NumberStyles.None, CultureInfo.InvariantCulture, out long id))
                throw new FormatException($"top_logprobs key '{Shorten(entry.Name)}' is not \"token_id:N\": the server ignored return_tokens_as_token_ids (a vLLM without that option?)");
            yield return (id, Float(entry.Value));
        }
    }

    public override async Task<RemoteModelFacts> DescribeAsync(RemoteHttp http, string? requested)
    {
        using var models = await http.GetAsync(new Uri(BaseUrl, "v1/models")).ConfigureAwait(false);
        if (!models.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array || data.GetArrayLength() == 0)
            throw new PargsException($"{new Uri(BaseUrl, "v1/models")}: the server lists no model");
        JsonElement? card = null;
        foreach (var m in data.EnumerateArray())
            if (m.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String && (requested is null || id.GetString() == requested)
                && !(m.TryGetProperty("pargs_kind", out var kind) && kind.GetString() == "reward_model"))
            { card = m; break; }
        if (card is null)
            throw new PargsException($"{new Uri(BaseUrl, "v1/models")}: no language model {(requested is null ? "" : $"named '{requested}' ")}among {string.Join(", ", data.EnumerateArray().Select(m => m.TryGetProperty("id", out var i) ? i.ToString() : "?"))}");
        model = card.Value.GetProperty("id").GetString();
        pargsServe = card.Value.TryGetProperty("pargs_kind", out _);
        return new RemoteModelFacts(model, null, IntOrNull(card.Value, "max_model_len"));
    }

    /// <summary>vLLM's <c>POST /tokenize</c> {"model", "prompt", "add_special_tokens": true} → {"tokens": [...]} (pargs serve adds "vocab_size").</summary>
    public override async Task<int[]?> TokenizeAsync(RemoteHttp http, string? requested, string text)
    {
        var url = new Uri(BaseUrl, "tokenize");
        using var doc = await http.TryAsync(HttpMethod.Post, url, Json(new JsonObject { ["model"] = model, ["prompt"] = text, ["add_special_tokens"] = true })).ConfigureAwait(false);
        if (doc is null) return null;
        if (!doc.RootElement.TryGetProperty("tokens", out var tokens)) throw new PargsException($"{url}: the answer has no 'tokens'");
        LastVocabSize = IntOrNull(doc.RootElement, "vocab_size");
        return IntArray(tokens, url);
    }

    /// <summary>The vocabulary size the last tokenize answer reported (pargs serve does; vLLM does not).</summary>
    public int? LastVocabSize { get; private set; }
}
