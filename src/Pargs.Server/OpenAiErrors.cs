using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Pargs.Server;

/// <summary>Writes OpenAI's error body, which every SDK parses into its own exception type.</summary>
public static class OpenAiErrors
{
    public static async Task WriteAsync(HttpContext context, int status, string message, string type, string? param = null, string? code = null)
    {
        if (context.Response.HasStarted) return; // a stream already sent its headers: the caller ends it instead
        context.Response.Clear();
        context.Response.StatusCode = status;
        if (status == 429) context.Response.Headers.RetryAfter = "1"; // Clear() dropped the one set before
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(Body(message, type, param, code), context.RequestAborted);
    }

    public static string Body(string message, string type, string? param = null, string? code = null)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartObject("error");
            json.WriteString("message", message);
            json.WriteString("type", type);
            if (param is null) json.WriteNull("param"); else json.WriteString("param", param);
            if (code is null) json.WriteNull("code"); else json.WriteString("code", code);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>OpenAI's error type for a status (what its own API answers).</summary>
    public static string TypeFor(int status) => status switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };
}
