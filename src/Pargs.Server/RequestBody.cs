using Microsoft.AspNetCore.Http;

namespace Pargs.Server;

/// <summary>Reads a request body into memory, refusing one beyond <see cref="ServerLimits.MaxBodyBytes"/> with 413.</summary>
public static class RequestBody
{
    public static async Task<byte[]> ReadAsync(HttpContext context, ServerLimits limits)
    {
        long? length = context.Request.ContentLength;
        if (length > limits.MaxBodyBytes) throw TooLarge(limits);
        if (length > 0) return await ReadExactlyAsync(context, (int)length.Value);
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

    /// <summary>
    /// A body of known length (what the SDKs and a remote steering client send) is read into one array of that size.
    /// WHY: a remote client sends a request per row and step (issue 18); this allocates the body once, where a 16 KB read
    /// buffer, a MemoryStream's growing buffer and their copy were allocated per request. Kestrel ends the body at its
    /// Content-Length, so the array is never overrun; a client that sends fewer bytes fails the read as before.
    /// </summary>
    static async Task<byte[]> ReadExactlyAsync(HttpContext context, int length)
    {
        var body = new byte[length];
        await context.Request.Body.ReadExactlyAsync(body, context.RequestAborted);
        return body;
    }

    static ApiException TooLarge(ServerLimits limits)
        => new(413, $"The request body is larger than this server's limit of {limits.MaxBodyBytes} bytes.", code: "request_too_large");
}
