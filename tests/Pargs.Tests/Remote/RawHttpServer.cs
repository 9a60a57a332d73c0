using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Pargs.Tests.Remote;

/// <summary>
/// A loopback TCP server that answers each HTTP request with the exact bytes a test scripts — for the shapes of HTTP/1.1
/// a client must read (chunked bodies, interim answers, answers ended by the connection's close, oversized or malformed
/// answers, idle connections the server closes) that no well-behaved server writes on demand. Keeps connections open
/// between requests unless the script says to close; counts connections and the most requests open at once.
/// </summary>
public sealed class RawHttpServer : IDisposable
{
    /// <summary>
    /// What to do with one request: the bytes to write (null: write nothing), then close the connection or keep it — or
    /// reset it (<paramref name="Reset"/>: no answer, an RST, as a server that died).
    /// </summary>
    public sealed record Answer(byte[]? Bytes, bool Close = false, TimeSpan Delay = default, bool Reset = false);

    readonly TcpListener listener = new(IPAddress.Loopback, 0);
    readonly Func<int, string, string, Answer> script;
    readonly CancellationTokenSource stop = new();
    readonly Task loop;
    int requests, open, connections;

    /// <param name="script">(request number from 0, request head, body) → answer; called on several threads at once.</param>
    public RawHttpServer(Func<int, string, string, Answer> script)
    {
        this.script = script;
        listener.Start();
        Url = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/");
        loop = Task.Run(Serve);
    }

    public Uri Url { get; }
    public int Connections => Volatile.Read(ref connections);
    public int Requests => Volatile.Read(ref requests);
    public int MostOpenAtOnce { get; private set; }
    public List<string> Heads { get; } = new();

    /// <summary>An HTTP/1.1 answer with a Content-Length.</summary>
    public static byte[] Json(int status, string body, string extraHeaders = "")
        => Encoding.UTF8.GetBytes($"HTTP/1.1 {status} {(HttpStatusCode)status}\r\nContent-Type: application/json\r\n{extraHeaders}Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}");

    async Task Serve()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(stop.Token); }
            catch (Exception) { return; }
            Interlocked.Increment(ref connections);
            _ = Task.Run(() => Converse(client));
        }
    }

    async Task Converse(TcpClient client)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            while (true)
            {
                var head = new List<byte>();
                while (!(head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
                {
                    int b = stream.ReadByte();
                    if (b < 0) return;
                    head.Add((byte)b);
                }
                string headText = Encoding.ASCII.GetString(head.ToArray());
                int length = headText.Split("\r\n").Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                    .Select(l => int.Parse(l["Content-Length:".Length..].Trim())).FirstOrDefault();
                var body = new byte[length];
                await stream.ReadExactlyAsync(body);
                int number = Interlocked.Increment(ref requests) - 1;
                int now = Interlocked.Increment(ref open);
                lock (Heads)
                {
                    Heads.Add(headText);
                    MostOpenAtOnce = Math.Max(MostOpenAtOnce, now);
                }
                var answer = script(number, headText, Encoding.UTF8.GetString(body));
                if (answer.Delay > TimeSpan.Zero) await Task.Delay(answer.Delay, stop.Token);
                Interlocked.Decrement(ref open);
                if (answer.Reset)
                {
                    client.Client.LingerState = new LingerOption(true, 0);
                    return;
                }
                if (answer.Bytes is not null)
                {
                    await stream.WriteAsync(answer.Bytes);
                    await stream.FlushAsync();
                }
                if (answer.Close) return;
            }
        }
        catch (Exception) { } // the client went away, or the test ended
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
        try { loop.Wait(TimeSpan.FromSeconds(5)); } catch { }
    }
}
