using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Pargs.Server;

/// <summary>
/// Every error leaves as OpenAI's error body: <see cref="ApiException"/> with its status, <see cref="PargsException"/>
/// (bad input found deeper in Pargs) as 400, Kestrel's own refusals (body too large, a broken request) with their
/// status, anything else as a 500 whose body says nothing of the server's internals (the log has the stack trace).
/// </summary>
public static class ErrorHandling
{
    public static (int Status, string Message, string Type, string? Param, string? Code) Describe(Exception e) => e switch
    {
        ApiException api => (api.Status, api.Message, api.Type, api.Param, api.Code),
        PargsException pargs => (400, pargs.Message, "invalid_request_error", null, null),
        BadHttpRequestException bad => (bad.StatusCode, bad.StatusCode == 413 ? "The request body is too large." : "The request could not be read.",
            OpenAiErrors.TypeFor(bad.StatusCode), null, bad.StatusCode == 413 ? "request_too_large" : null),
        _ => (500, "The server had an error while processing your request.", "server_error", null, null),
    };

    public static async Task Middleware(HttpContext context, Func<Task> next, ServerMetrics metrics, ILogger logger)
    {
        try
        {
            await next();
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            metrics.CountRequest(Endpoint(context), 499); // the client left; nobody reads an answer
            return;
        }
        catch (Exception e)
        {
            var (status, message, type, param, code) = Describe(e);
            if (status >= 500) logger.LogError(e, "request {Path} failed", context.Request.Path);
            metrics.CountRequest(Endpoint(context), status);
            if (context.Response.HasStarted) return; // a stream already answered 200; it ended with an error event
            await OpenAiErrors.WriteAsync(context, status, message, type, param, code);
            return;
        }
        metrics.CountRequest(Endpoint(context), context.Response.StatusCode);
    }

    /// <summary>A bounded label for metrics: known routes by name, anything else as "other".</summary>
    public static string Endpoint(HttpContext context) => context.Request.Path.Value switch
    {
        "/v1/completions" => "completions",
        "/v1/chat/completions" => "chat_completions",
        "/v1/rewards" => "rewards",
        "/v1/models" => "models",
        "/health" => "health",
        "/metrics" => "metrics",
        _ => "other",
    };
}
