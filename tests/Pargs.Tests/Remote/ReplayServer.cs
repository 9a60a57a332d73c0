namespace Pargs.Tests.Remote;

/// <summary>
/// An in-test HTTP/1.1 server on 127.0.0.1 (a free port) that answers each request with what a handler returns — response
/// bodies transcribed from a server's documentation or source — and records what it was asked. One request per
/// connection (<c>Connection: close</c>), so that a reply can also be "the connection drops without an answer".
/// The wire is <see cref="RawHttpServer"/>'s; this adds the paths, the JSON answers and the record.
/// </summary>
public sealed class ReplayServer : IDisposable
{
    /// <summary>A status below 0 drops the connection without an answer (a server that died).</summary>
    public sealed record Reply(int Status, string Body, string? RetryAfter = null);

    readonly RawHttpServer server;

    /// <param name="handler">(path, request body) → reply; may be called on several threads at once.</param>
    public ReplayServer(Func<string, string, Reply> handler)
    {
        server = new RawHttpServer((_, head, body) =>
        {
            string path = new Uri(Url, head.Split(' ')[1]).AbsolutePath;
            lock (Seen) Seen.Add((path, body));
            var reply = handler(path, body);
            if (reply.Status < 0) return new(null, Reset: true);
            string headers = (reply.RetryAfter is null ? "" : $"Retry-After: {reply.RetryAfter}\r\n") + "Connection: close\r\n";
            return new(RawHttpServer.Json(reply.Status, reply.Body, headers), Close: true);
        });
    }

    public Uri Url => server.Url;
    public List<(string Path, string Body)> Seen { get; } = new();

    public void Dispose() => server.Dispose();
}
