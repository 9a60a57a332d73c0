using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pargs.Engine.Remote;

/// <summary>
/// SGLang's native <c>POST /generate</c> (docs/basic_usage/native_api and sampling_params at commit
/// 440d418ff4d9fa76f3c50da4b293d6be02fd2518; GenerateReqInput in io_struct.py):
/// <code>
///   {"input_ids": [ids], "sampling_params": {"max_new_tokens": 1, "temperature": 1, "top_p": 1, "top_k": -1, "min_p": 0},
///    "return_logprob": true, "top_logprobs_num": k}
///   → {"text": …, "meta_info": {"output_top_logprobs": [[[logprob, token_id, text|null], …]], …}}
/// </code>
/// One list per generated token, each entry a [log p, id, text] triple. Temperature 1 with no truncation makes the
/// log-probabilities the model's own distribution whichever of SGLang's conventions (before or after temperature) applies.
/// SGLang's native API has no tokenize endpoint Pargs relies on, so only the returned ids' range is checked.
/// </summary>
public sealed class SgLangClient(Uri baseUrl) : RemoteLmClient(baseUrl)
{
    public override Uri StepUrl { get; } = new(baseUrl, "generate");

    public override string TopKLimitHint => "SGLang returns top_logprobs_num entries per token; check the server's version and its logprob settings";

    protected override void WriteStep(Utf8JsonWriter w, ReadOnlySpan<int> prefix, int k)
    {
        WriteIds(w, "input_ids", prefix);
        w.WriteStartObject("sampling_params");
        w.WriteNumber("max_new_tokens", 1);
        w.WriteNumber("temperature", 1.0);
        w.WriteNumber("top_p", 1.0);
        w.WriteNumber("top_k", -1);
        w.WriteNumber("min_p", 0.0);
        w.WriteEndObject();
        w.WriteBoolean("return_logprob", true);
        w.WriteNumber("top_logprobs_num", k);
    }

    protected override IEnumerable<(long Id, float LogProb)> ReadTopLogProbs(JsonElement root)
    {
        var meta = root.ValueKind == JsonValueKind.Array ? root[0].GetProperty("meta_info") : root.GetProperty("meta_info");
        var first = meta.GetProperty("output_top_logprobs")[0];
        foreach (var entry in first.EnumerateArray())
            yield return (entry[1].GetInt64(), Float(entry[0]));
    }

    /// <summary><c>GET /get_model_info</c> names the model; SGLang reports neither vocabulary nor context there.</summary>
    public override async Task<RemoteModelFacts> DescribeAsync(RemoteHttp http, string? model)
    {
        using var info = await http.TryAsync(HttpMethod.Get, new Uri(BaseUrl, "get_model_info"), null).ConfigureAwait(false);
        string? name = info is not null && info.RootElement.TryGetProperty("model_path", out var path) ? path.GetString() : null;
        return new RemoteModelFacts(name, null, null);
    }

    public override Task<int[]?> TokenizeAsync(RemoteHttp http, string? model, string text) => Task.FromResult<int[]?>(null);
}
