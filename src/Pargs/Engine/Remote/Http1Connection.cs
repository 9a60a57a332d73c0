using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Pargs.Engine.Remote;

/// <summary>One HTTP answer as read off the wire: the status, the reason phrase, a Retry-After wait if any, the whole body.</summary>
internal sealed record Http1Answer(int Status, string Reason, TimeSpan? RetryAfter, byte[] Body);

/// <summary>An answer that is not HTTP/1.x as RFC 9112 writes it (retried, as a connection that broke mid-answer is).</summary>
internal sealed class Http1FormatException(string message) : IOException(message);

/// <summary>An answer beyond <see cref="RemoteHttp.MaxAnswerBytes"/> of body or 64 KiB of headers (not retried).</summary>
internal sealed class Http1TooLargeException(string message) : Exception(message);

/// <summary>
/// One blocking HTTP/1.1 keep-alive connection to a plain <c>http://</c> server: a request is written in one send, its
/// answer read whole on the thread that asked — no socket-engine thread and no thread-pool hop between the bytes arriving
/// and the decoder reading them. WHY: on loopback a step request through <see cref="HttpClient"/> cost the client ~80 µs of
/// CPU (async state machines, the socket engine's wake-up, a hop to the pool per answer) and this ~32 µs, with the
/// answers of a batch's rows read one after another while the server works on the rest (docs/remote.md, twelfth pass).
/// Reads: a status line and headers (at most 64 KiB), then a body delimited by Content-Length, chunked transfer coding,
/// or the end of the connection; 1xx interim answers are skipped. Anything else is an <see cref="Http1FormatException"/>.
/// </summary>
internal sealed class Http1Connection : IDisposable
{
    const int MaxHeadBytes = 64 << 10;

    readonly Socket socket;
    byte[] buffer = new byte[16 << 10];
    int start, end; // buffer[start..end) is read from the socket and not yet parsed
    byte[] sendBuffer = new byte[4 << 10];
    int sendTimeout = -1, receiveTimeout = -1; // SO_SNDTIMEO / SO_RCVTIMEO as set (ms): set when they change, not per read (a syscall each)
    long deadline;            // Environment.TickCount64 past which the current answer is late
    long timeoutGrain = 1;    // ms: the receive timeout is the time left rounded up to this (a sixteenth of the request timeout)

    Http1Connection(Socket socket, string origin)
    {
        this.socket = socket;
        Origin = origin;
        OpenedAt = LastUsed = Environment.TickCount64;
    }

    /// <summary>scheme://host:port this connection talks to (the pool's key).</summary>
    public string Origin { get; }
    public long OpenedAt { get; }
    public long LastUsed { get; private set; }
    /// <summary>Whether it has carried an answer before: a failure before any byte of the next answer may be the server having closed it while idle.</summary>
    public bool Reused { get; private set; }
    /// <summary>Whether the last answer left the connection open and in step (HTTP/1.1 without Connection: close, its body delimited).</summary>
    public bool Reusable { get; private set; }
    /// <summary>Whether any byte of the current answer has arrived (a failure after one is not an idle connection's).</summary>
    public bool AnswerStarted { get; private set; }

    public static string OriginOf(Uri url) => $"{url.Scheme}://{url.IdnHost}:{url.Port}";

    /// <summary>
    /// Connects to <paramref name="url"/>'s host and port (every address the name resolves to, in order) within
    /// <paramref name="timeout"/>. WHY a blocking connect, its timeout a timer that closes the socket: one asynchronous
    /// operation on a .NET socket makes it non-blocking for good, and every later "blocking" receive a wait for the
    /// socket engine's thread to signal it — the hop this connection exists to avoid.
    /// </summary>
    public static Http1Connection Open(Uri url, TimeSpan timeout)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        int state = 0; // 0 connecting, 1 connected, 2 timed out: whoever moves it from 0 decides (the timer only closes a socket still connecting)
        try
        {
            EndPoint endPoint = IPAddress.TryParse(url.IdnHost.Trim('[', ']'), out var address) ? new IPEndPoint(address, url.Port) : new DnsEndPoint(url.IdnHost, url.Port);
            using (new Timer(_ => { if (Interlocked.CompareExchange(ref state, 2, 0) == 0) socket.Dispose(); }, null, timeout, Timeout.InfiniteTimeSpan))
                socket.Connect(endPoint);
            if (Interlocked.CompareExchange(ref state, 1, 0) != 0) throw new ObjectDisposedException(nameof(Socket)); // closed as it connected
            return new Http1Connection(socket, OriginOf(url));
        }
        catch (Exception e) when (Volatile.Read(ref state) == 2 && e is SocketException or ObjectDisposedException)
        {
            socket.Dispose();
            throw new IOException($"no connection within {timeout.TotalSeconds:G4} s");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Whether an idle connection can carry another request: nothing readable on it (a readable idle socket is one the
    /// server closed, or one holding bytes nobody asked for), within its idle time and lifetime.
    /// </summary>
    public bool StillGood(TimeSpan idleTimeout, TimeSpan lifetime)
    {
        long now = Environment.TickCount64;
        if (now - LastUsed > idleTimeout.TotalMilliseconds || now - OpenedAt > lifetime.TotalMilliseconds) return false;
        if (now - LastUsed < 1000) return true; // servers close idle connections after seconds (uvicorn, llama.cpp: 5 s); a race is resent (RemoteHttp)
        try { return !socket.Poll(0, SelectMode.SelectRead); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { return false; }
    }

    /// <summary>Writes <paramref name="head"/> (ASCII: request line and headers, ending in an empty line) and <paramref name="body"/> in one send.</summary>
    public void Send(string head, ReadOnlySpan<byte> body, TimeSpan timeout)
    {
        int headBytes = head.Length, total = headBytes + body.Length;
        if (sendBuffer.Length < total) sendBuffer = new byte[Math.Max(total, sendBuffer.Length * 2)];
        Encoding.ASCII.GetBytes(head, sendBuffer);
        body.CopyTo(sendBuffer.AsSpan(headBytes));
        int ms = TimeoutMilliseconds(timeout);
        if (ms != sendTimeout) socket.SendTimeout = sendTimeout = ms;
        AnswerStarted = false;
        Reusable = false;
        for (int sent = 0; sent < total;)
            sent += socket.Send(sendBuffer, sent, total - sent, SocketFlags.None);
    }

    /// <summary>
    /// Reads the answer to the request just sent, all of it by <paramref name="deadline"/> (<see cref="Environment.TickCount64"/>,
    /// the send plus the request timeout <paramref name="timeout"/>): bytes that have arrived are read whenever this is
    /// called; a wait for more ends at the deadline (give or take a sixteenth of the timeout, so that the socket's receive
    /// timeout is not set again per read) with <see cref="SocketError.TimedOut"/>.
    /// </summary>
    public Http1Answer Receive(TimeSpan timeout, long deadline, int maxBody)
    {
        this.deadline = deadline;
        timeoutGrain = Math.Max(1, TimeoutMilliseconds(timeout) / 16);
        while (true)
        {
            var (status, reason, version11, headers) = ReadHead();
            if (status is >= 100 and < 200)
            {
                if (status == 101) throw new Http1FormatException("the server switched protocols (101), which a step request never asks for");
                continue; // an interim answer (100 Continue, 103 Early Hints): the real one follows
            }
            bool close = HasToken(headers, "connection", "close") || (!version11 && !HasToken(headers, "connection", "keep-alive"));
            byte[] body;
            bool delimited = true;
            string? coding = Header(headers, "transfer-encoding");
            if (status is 204 or 304) body = [];
            else if (coding is not null)
            {
                if (!coding.Trim().EndsWith("chunked", StringComparison.OrdinalIgnoreCase) || coding.Contains(','))
                    throw new Http1FormatException($"the answer's Transfer-Encoding is '{coding}' (only chunked is read)");
                body = ReadChunked(maxBody);
                close |= Header(headers, "content-length") is not null; // both framings: chunked wins, the connection is not trusted again (RFC 9112 §6.3)
            }
            else if (Header(headers, "content-length") is { } lengthText)
            {
                if (!long.TryParse(lengthText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long length))
                    throw new Http1FormatException($"the answer's Content-Length is '{lengthText}'");
                if (length > maxBody) throw new Http1TooLargeException($"Content-Length {length} is above the limit of {maxBody} bytes");
                body = ReadExactly((int)length);
            }
            else
            {
                body = ReadToEnd(maxBody);
                delimited = false;
            }
            Reusable = !close && delimited && start == end;
            Reused = true;
            LastUsed = Environment.TickCount64;
            return new Http1Answer(status, reason, RetryAfter(Header(headers, "retry-after")), body);
        }
    }

    (int Status, string Reason, bool Version11, List<(string Name, string Value)> Headers) ReadHead()
    {
        int headEnd;
        while ((headEnd = buffer.AsSpan(start, end - start).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (end - start >= MaxHeadBytes) throw new Http1TooLargeException($"the answer's headers are above {MaxHeadBytes >> 10} KiB");
            if (Fill() == 0) throw new Http1FormatException(AnswerStarted ? "the server closed the connection in the middle of its answer's headers" : "the server closed the connection without answering");
        }
        if (headEnd > MaxHeadBytes) throw new Http1TooLargeException($"the answer's headers are above {MaxHeadBytes >> 10} KiB");
        string head = Encoding.Latin1.GetString(buffer, start, headEnd);
        start += headEnd + 4;
        var lines = head.Split("\r\n");
        // status-line = HTTP-version SP status-code SP [ reason-phrase ]
        var statusLine = lines[0];
        if (statusLine.Length < 12 || !statusLine.StartsWith("HTTP/1.", StringComparison.Ordinal) || statusLine[8] != ' '
            || !int.TryParse(statusLine.AsSpan(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out int status) || status < 100
            || (statusLine.Length > 12 && statusLine[12] != ' '))
            throw new Http1FormatException($"the answer does not start with an HTTP/1.x status line: '{Shorten(statusLine)}'");
        var headers = new List<(string Name, string Value)>(lines.Length - 1);
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length > 0 && (lines[i][0] == ' ' || lines[i][0] == '\t') && headers.Count > 0)
            {
                // obs-fold (RFC 9112 §5.2): a line continuing the last field's value, read as one space and the rest.
                headers[^1] = (headers[^1].Name, headers[^1].Value + " " + lines[i].Trim());
                continue;
            }
            int colon = lines[i].IndexOf(':');
            if (colon <= 0) throw new Http1FormatException($"the answer has a header line without a name: '{Shorten(lines[i])}'");
            headers.Add((lines[i][..colon].Trim().ToLowerInvariant(), lines[i][(colon + 1)..].Trim()));
        }
        return (status, statusLine.Length > 13 ? statusLine[13..] : "", statusLine[7] == '1', headers);
    }

    static string? Header(List<(string Name, string Value)> headers, string name)
    {
        string? found = null;
        foreach (var (n, v) in headers)
            if (n == name)
            {
                if (found is not null && found != v && name == "content-length") throw new Http1FormatException($"the answer has two different Content-Length headers ('{found}', '{v}')");
                found = found is null || name == "content-length" ? v : found + ", " + v;
            }
        return found;
    }

    static bool HasToken(List<(string Name, string Value)> headers, string name, string token)
        => Header(headers, name) is { } value && value.Split(',').Any(t => t.Trim().Equals(token, StringComparison.OrdinalIgnoreCase));

    /// <summary>Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), as <see cref="RemoteHttp"/> reads HttpClient's; anything else is ignored.</summary>
    static TimeSpan? RetryAfter(string? value)
    {
        if (value is null) return null;
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds)) return TimeSpan.FromSeconds(seconds);
        if (DateTimeOffset.TryParseExact(value, "r", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date))
            return date - DateTimeOffset.UtcNow;
        return null;
    }

    byte[] ReadExactly(int length)
    {
        var body = new byte[length];
        int have = Math.Min(length, end - start);
        buffer.AsSpan(start, have).CopyTo(body);
        start += have;
        while (have < length)
        {
            int n = Pull(body, have, length - have);
            if (n == 0) throw new Http1FormatException($"the server closed the connection after {have} of the answer's {length} bytes");
            have += n;
        }
        return body;
    }

    byte[] ReadToEnd(int maxBody)
    {
        var body = new MemoryStream();
        body.Write(buffer, start, end - start);
        start = end = 0;
        while (true)
        {
            if (body.Length > maxBody) throw new Http1TooLargeException($"the answer is above the limit of {maxBody} bytes");
            int n = Pull(buffer, 0, buffer.Length);
            if (n == 0) return body.ToArray();
            body.Write(buffer, 0, n);
        }
    }

    /// <summary>chunked = *( chunk-size [ ext ] CRLF data CRLF ) "0" [ ext ] CRLF *( trailer CRLF ) CRLF (RFC 9112 §7.1).</summary>
    byte[] ReadChunked(int maxBody)
    {
        var body = new MemoryStream();
        while (true)
        {
            string sizeLine = ReadLine();
            int semicolon = sizeLine.IndexOf(';');
            var sizeText = (semicolon >= 0 ? sizeLine[..semicolon] : sizeLine).Trim();
            if (sizeText.Length == 0 || sizeText.Length > 8 || !int.TryParse(sizeText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int size) || size < 0)
                throw new Http1FormatException($"a chunk's size is '{Shorten(sizeLine)}'");
            if (size == 0)
            {
                while (ReadLine().Length > 0) { } // trailer fields, then the empty line
                return body.ToArray();
            }
            if (body.Length + size > maxBody) throw new Http1TooLargeException($"the answer is above the limit of {maxBody} bytes");
            body.Write(ReadExactly(size));
            if (ReadLine().Length != 0) throw new Http1FormatException("a chunk does not end where its size says");
        }
    }

    string ReadLine()
    {
        int lineEnd;
        while ((lineEnd = buffer.AsSpan(start, end - start).IndexOf("\r\n"u8)) < 0)
        {
            if (end - start >= MaxHeadBytes) throw new Http1TooLargeException($"a chunk line is above {MaxHeadBytes >> 10} KiB");
            if (Fill() == 0) throw new Http1FormatException("the server closed the connection in the middle of a chunked answer");
        }
        string line = Encoding.Latin1.GetString(buffer, start, lineEnd);
        start += lineEnd + 2;
        return line;
    }

    /// <summary>Reads more bytes after <c>buffer[start..end)</c> (moved to the front, the buffer grown to the head limit if full); 0 at the end of the connection.</summary>
    int Fill()
    {
        if (start > 0)
        {
            buffer.AsSpan(start, end - start).CopyTo(buffer);
            end -= start;
            start = 0;
        }
        if (end == buffer.Length) Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxHeadBytes + 4));
        int n = Pull(buffer, end, buffer.Length - end);
        if (n > 0) AnswerStarted = true;
        end += n;
        return n;
    }

    /// <summary>One receive: what has arrived, else a wait for bytes until the deadline (then <see cref="SocketError.TimedOut"/>).</summary>
    int Pull(byte[] into, int offset, int count)
    {
        long left = deadline - Environment.TickCount64;
        if (left <= 0)
        {
            // Late: what is already here was on time (a read can start late behind another row's retry); nothing more is waited for.
            if (socket.Available == 0) throw new SocketException((int)SocketError.TimedOut);
        }
        else
        {
            int wait = (int)Math.Min(int.MaxValue, (left + timeoutGrain - 1) / timeoutGrain * timeoutGrain);
            if (wait != receiveTimeout) socket.ReceiveTimeout = receiveTimeout = wait;
        }
        return socket.Receive(into, offset, count, SocketFlags.None);
    }

    static int TimeoutMilliseconds(TimeSpan timeout) => timeout == Timeout.InfiniteTimeSpan ? 0 : (int)Math.Clamp(Math.Ceiling(timeout.TotalMilliseconds), 1, int.MaxValue);

    static string Shorten(string text) => text.Length > 120 ? text[..120] + "…" : text;

    public void Dispose() => socket.Dispose();
}
