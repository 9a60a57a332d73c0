using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Engine.Remote;

/// <summary>
/// llama.cpp's server <c>POST /completion</c> (tools/server/README.md at commit 00dc8057ab28c9cb4c79a6dd6dfce07fe779f63b):
/// <code>
///   {"prompt": [ids], "n_predict": 1, "n_probs": k, "cache_prompt": true, "post_sampling_probs": false, "temperature": 1}
///   → {"completion_probabilities": [{"id", "token", "logprob", "bytes", "top_logprobs": [{"id", "token", "logprob", "bytes"}, …]}], …}
/// </code>
/// With <c>post_sampling_probs</c> false the probabilities are a plain softmax of the logits, before the sampler chain
/// (its README: "token probabilities are still being calculated via a simple softmax of the logits without considering
/// any other sampler settings"). A token-id prompt gets no BOS added (the README: BOS is inserted only for a string prompt).
/// <c>cache_prompt</c> lets a slot reuse the KV cache of the prefix it saw last. The README's example shows the array as
/// "probs" while its text and the server say "completion_probabilities"; both are read. Builds before the log-prob format
/// (older "probs": [{"tok_str", "prob"}]) are refused by name.
/// </summary>
public sealed class LlamaCppClient(Uri baseUrl) : RemoteLmClient(baseUrl)
{
    public override Uri StepUrl { get; } = new(baseUrl, "completion");

    public override string TopKLimitHint
        => "llama.cpp returns at most n_probs of the tokens it kept (post_sampling_probs must be false, as Pargs sends it; an older build may cap n_probs)";

    protected override void WriteStep(Utf8JsonWriter w, ReadOnlySpan<int> prefix, int k)
    {
        WriteIds(w, "prompt", prefix);
        w.WriteNumber("n_predict", 1);
        w.WriteNumber("n_probs", k);
        w.WriteBoolean("cache_prompt", true);
        w.WriteBoolean("post_sampling_probs", false);
        w.WriteNumber("temperature", 1.0);
    }

    protected override IEnumerable<(long Id, float LogProb)> ReadTopLogProbs(JsonElement root)
    {
        if (!root.TryGetProperty("completion_probabilities", out var probabilities) && !root.TryGetProperty("probs", out probabilities))
            throw new FormatException("no completion_probabilities: the server ignored n_probs");
        var first = probabilities[0];
        if (!first.TryGetProperty("top_logprobs", out var top))
            throw new FormatException(first.TryGetProperty("probs", out _) || first.TryGetProperty("top_probs", out _)
                ? "probabilities instead of log-probabilities: a llama.cpp build before the log-prob format, or post_sampling_probs on; use a newer llama-server"
                : "no top_logprobs");
        foreach (var entry in top.EnumerateArray())
            yield return (entry.GetProperty("id").GetInt64(), Float(entry.GetProperty("logprob")));
    }

    /// <summary><c>GET /v1/models</c> → data[0].meta.n_vocab, and <c>GET /props</c> → default_generation_settings.n_ctx.</summary>
    public override async Task<RemoteModelFacts> DescribeAsync(RemoteHttp http, string? model)
    {
        int? vocab = null, context = null;
        string? name = null;
        using (var models = await http.TryAsync(HttpMethod.Get, new Uri(BaseUrl, "v1/models"), null).ConfigureAwait(false))
            if (models is not null && models.RootElement.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Array && data.GetArrayLength() > 0)
            {
                var card = data[0];
                name = card.TryGetProperty("id", out var id) ? id.GetString() : null;
                if (card.TryGetProperty("meta", out var meta)) vocab = IntOrNull(meta, "n_vocab");
            }
        using (var props = await http.TryAsync(HttpMethod.Get, new Uri(BaseUrl, "props"), null).ConfigureAwait(false))
            if (props is not null && props.RootElement.TryGetProperty("default_generation_settings", out var settings))
                context = IntOrNull(settings, "n_ctx");
        return new RemoteModelFacts(name, vocab, context);
    }

    /// <summary><c>POST /tokenize</c> {"content", "add_special": true} → {"tokens": [ids]}.</summary>
    public override async Task<int[]?> TokenizeAsync(RemoteHttp http, string? model, string text)
    {
        var url = new Uri(BaseUrl, "tokenize");
        using var doc = await http.TryAsync(HttpMethod.Post, url, Json(new JsonObject { ["content"] = text, ["add_special"] = true })).ConfigureAwait(false);
        if (doc is null) return null;
        if (!doc.RootElement.TryGetProperty("tokens", out var tokens)) throw new PargsException($"{url}: the answer has no 'tokens'");
        return IntArray(tokens, url);
    }
}
