using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Pargs.Server;

/// <summary>
/// <c>POST /tokenize</c> in vLLM's shape — <c>{"model", "prompt", "add_special_tokens": true}</c> →
/// <c>{"count", "max_model_len", "tokens", "token_strs": null}</c>, plus Pargs' <c>vocab_size</c> — so that a client steering
/// this server with its own tokenizer (a remote engine) can check that both tokenizers agree before the first step. A causal
/// reward model's name tokenizes with its tokenizer (a remote reward model checks it before sending token ids).
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
        string name = json.RequiredString("model");
        // A causal reward model's tokenizer too: a steering client checks it before sending /v1/rewards token ids.
        var rewardModel = models.RewardModels.FirstOrDefault(m => m.Name == name)?.Model;
        if (rewardModel is not null && rewardModel is not Pargs.Rewards.RewardModel { Tokenizer: not null })
            throw ApiException.BadRequest($"The reward model `{name}` is not tokenized here (an encoder reward model reads text with its own tokenizer).", "model");
        var config = rewardModel?.Config ?? models.LanguageModel(name).Model.Config;
        var tokenizer = rewardModel?.Tokenizer ?? models.LanguageModel(name).Model.Tokenizer!;
        string prompt = json.RequiredString("prompt");
        bool special = json.OptionalBool("add_special_tokens") ?? true;
        var ids = tokenizer.Encode(prompt, addBos: special);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("count", ids.Length);
            w.WriteNumber("max_model_len", config.MaxPositions);
            w.WriteStartArray("tokens");
            foreach (var id in ids) w.WriteNumberValue(id);
            w.WriteEndArray();
            w.WriteNull("token_strs");
            w.WriteNumber("vocab_size", config.VocabSize);
            w.WriteEndObject();
        }
        context.Response.ContentType = "application/json";
        await context.Response.Body.WriteAsync(buffer.ToArray(), context.RequestAborted);
    }
}
