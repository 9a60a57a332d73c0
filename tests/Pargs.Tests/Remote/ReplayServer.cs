using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Pargs.Tests.Remote;

/// <summary>
/// An in-test HTTP/1.1 server on 127.0.0.1 (a free port) that answers each request with what a handler returns — response
/// bodies transcribed from a server's documentation or source — and records what it was asked. One request per
/// connection (<c>Connection: close</c>), so that a reply can also be "the connection drops without an answer".
/// </summary>
public sealed class ReplayServer : IDisposable
{
    /// <summary>A status below 0 drops the connection without an answer (a server that died).</summary>
    public sealed record Reply(int Status, string Body, string? RetryAfter = null);

    readonly TcpListener listener = new(IPAddress.Loopback, 0);
    readonly Func<string, string, Reply> handler;
    readonly CancellationTokenSource stop = new();
    readonly Task loop;

    /// <param name="handler">(path, request body) → reply; may be called on several threads at once.</param>
    public ReplayServer(Func<string, string, Reply> handler)
    {
        this.handler = handler;
        listener.Start();
        Url = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/");
        loop = Task.Run(Serve);
    }

    public Uri Url { get; }
    public List<(string Path, string Body)> Seen { get; } = new();

    async Task Serve()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Answer(client));
        }
    }

    async Task Answer(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            var head = new List<byte>();
            while (!(head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
            {
                int b = stream.ReadByte();
                if (b < 0) return;
                head.Add((byte)b);
            }
            var lines = Encoding.ASCII.GetString(head.ToArray()).Split("\r\n");
            string path = new Uri(Url, lines[0].Split(' ')[1]).AbsolutePath;
            int length = lines.Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                .Select(l => int.Parse(l["Content-Length:".Length..].Trim())).FirstOrDefault();
            var body = new byte[length];
            int read = 0;
            while (read < length)
            {
                int n = await stream.ReadAsync(body.AsMemory(read));
                if (n == 0) return;
                read += n;
            }
            string text = Encoding.UTF8.GetString(body);
            lock (Seen) Seen.Add((path, text));
            var reply = handler(path, text);
            if (reply.Status < 0)
            {
                client.Client.LingerState = new LingerOption(true, 0); // reset, no answer
                return;
            }
            var bytes = Encoding.UTF8.GetBytes(reply.Body);
            var response = new StringBuilder()
                .Append($"HTTP/1.1 {reply.Status} {(HttpStatusCode)reply.Status}\r\n")
                .Append("Content-Type: application/json\r\n")
                .Append($"Content-Length: {bytes.Length}\r\n")
                .Append(reply.RetryAfter is null ? "" : $"Retry-After: {reply.RetryAfter}\r\n")
                .Append("Connection: close\r\n\r\n");
            await stream.WriteAsync(Encoding.ASCII.GetBytes(response.ToString()));
            await stream.WriteAsync(bytes);
            await stream.FlushAsync();
        }
        catch (Exception) { } // the client went away
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
        try { loop.Wait(TimeSpan.FromSeconds(5)); } catch { }
    }
}
