using Microsoft.AspNetCore.Http;

namespace Pargs.Server;

/// <summary>Reads a request body into memory, refusing one beyond <see cref="ServerLimits.MaxBodyBytes"/> with 413.</summary>
public static class RequestBody
{
    public static async Task<byte[]> ReadAsync(HttpContext context, ServerLimits limits)
    {
        if (context.Request.ContentLength > limits.MaxBodyBytes) throw TooLarge(limits);
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limits.MaxBodyBytes) throw TooLarge(limits);
            buffer.Write(chunk, 0, read);
        }
        if (buffer.Length == 0) throw new ApiException(400, "The request body is empty; expected a JSON object.", code: "invalid_json");
        return buffer.ToArray();
    }

    static ApiException TooLarge(ServerLimits limits)
        => new(413, $"The request body is larger than this server's limit of {limits.MaxBodyBytes} bytes.", code: "request_too_large");
}
