using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Pargs.Server;

/// <summary>
/// <c>POST /tokenize</c> in vLLM's shape — <c>{"model", "prompt", "add_special_tokens": true}</c> →
/// <c>{"count", "max_model_len", "tokens", "token_strs": null}</c>, plus Pargs' <c>vocab_size</c> — so that a client steering
/// this server with its own tokenizer (a remote engine) can check that both tokenizers agree before the first step.
/// </summary>
public sealed class TokenizeEndpoint(ServedModels models, ServerLimits limits)
{
    public async Task Tokenize(HttpContext context)
    {
        var json = RequestJson.Parse(await RequestBody.ReadAsync(context, limits));
        json.RefuseUnknown(["model", "prompt", "add_special_tokens"], new Dictionary<string, string>
        {
            ["messages"] = "only a 'prompt' is tokenized here (render the chat template on the client).",
            ["return_token_strs"] = "token strings are not returned.",
        });
        var served = models.LanguageModel(json.RequiredString("model"));
        string prompt = json.RequiredString("prompt");
        bool special = json.OptionalBool("add_special_tokens") ?? true;
        var lm = served.Model;
        var ids = lm.Tokenizer!.Encode(prompt, addBos: special);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("count", ids.Length);
            w.WriteNumber("max_model_len", lm.Config.MaxPositions);
            w.WriteStartArray("tokens");
            foreach (var id in ids) w.WriteNumberValue(id);
            w.WriteEndArray();
            w.WriteNull("token_strs");
            w.WriteNumber("vocab_size", lm.Config.VocabSize);
            w.WriteEndObject();
        }
        context.Response.ContentType = "application/json";
        await context.Response.Body.WriteAsync(buffer.ToArray(), context.RequestAborted);
    }
}
