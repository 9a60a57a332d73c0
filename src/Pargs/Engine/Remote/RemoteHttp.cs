using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Pargs.Engine.Remote;

/// <summary>
/// The HTTP side of a remote backend: one pooled keep-alive <see cref="HttpClient"/>, a bound on requests in flight,
/// a per-request timeout, and retries with exponential backoff and jitter on what a retry can fix (429, 502, 503, 504,
/// a timeout, a refused or reset connection) — a step request only reads, so repeating it is safe. Anything else, or the
/// last failed retry, is a <see cref="PargsException"/> naming the URL, the status and the server's own message.
/// </summary>
public sealed class RemoteHttp : IDisposable
{
    readonly HttpClient client;
    readonly SemaphoreSlim inFlight;
    readonly int retries;
    readonly TimeSpan retryBase;
    readonly TimeSpan timeout;
    readonly string? authorization;
    readonly bool stepsOverSockets;
    long requests, retried;

    /// <param name="overSockets">Whether <see cref="Begin"/> uses its own blocking connections for plain http (null: yes, unless PARGS_REMOTE_SOCKETS=0).</param>
    public RemoteHttp(int concurrency, TimeSpan timeout, int retries, TimeSpan retryBase, string? apiKey, bool? overSockets = null)
    {
        if (concurrency < 1) throw new PargsException($"the remote concurrency must be at least 1, got {concurrency}");
        if (retries < 0) throw new PargsException($"the remote retries must be at least 0, got {retries}");
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = concurrency,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            AutomaticDecompression = DecompressionMethods.None,
        };
        client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan, MaxResponseContentBufferSize = MaxAnswerBytes }; // timeout per request, below
        client.DefaultRequestHeaders.ExpectContinue = false;
        if (!string.IsNullOrEmpty(apiKey))
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
            authorization = "Bearer " + apiKey;
        }
        stepsOverSockets = overSockets ?? Environment.GetEnvironmentVariable("PARGS_REMOTE_SOCKETS") != "0";
        inFlight = new SemaphoreSlim(concurrency);
        this.retries = retries;
        this.retryBase = retryBase;
        this.timeout = timeout;
    }

    /// <summary>
    /// The most of one answer read (8 MiB): a server's answer is untrusted bytes, read whole into memory, and a step's is a
    /// few kilobytes (k log-probabilities, k rewards; a model list or a tokenization is not much more). A larger one fails
    /// at once — its Content-Length, or as it arrives — with an error naming the URL, and is not retried.
    /// </summary>
    public const int MaxAnswerBytes = 8 << 20;

    /// <summary>Requests sent (a retried request counts once per attempt).</summary>
    public long Requests => Interlocked.Read(ref requests);
    /// <summary>Attempts that were retries.</summary>
    public long Retried => Interlocked.Read(ref retried);

    /// <summary>POSTs <paramref name="body"/> (JSON; sent as it is on every attempt, never copied) and returns the parsed JSON answer.</summary>
    public Task<JsonDocument> PostAsync(Uri url, ReadOnlyMemory<byte> body, CancellationToken cancellation = default) => SendAsync(HttpMethod.Post, url, body, cancellation);

    public Task<JsonDocument> GetAsync(Uri url, CancellationToken cancellation = default) => SendAsync(HttpMethod.Get, url, null, cancellation);

    /// <summary>As <see cref="SendAsync"/>, but a 404 answers null (an endpoint the server does not have).</summary>
    public async Task<JsonDocument?> TryAsync(HttpMethod method, Uri url, ReadOnlyMemory<byte>? body)
    {
        try { return await SendAsync(method, url, body, default, notFoundIsNull: true).ConfigureAwait(false); }
        catch (NotFound) { return null; }
    }

    sealed class NotFound : Exception;

    async Task<JsonDocument> SendAsync(HttpMethod method, Uri url, ReadOnlyMemory<byte>? body, CancellationToken cancellation, bool notFoundIsNull = false)
    {
        string last = "";
        TimeSpan? retryAfter = null;
        for (int attempt = 0; ; attempt++)
        {
            if (attempt > 0)
            {
                Interlocked.Increment(ref retried);
                await Task.Delay(Backoff(attempt, retryAfter), cancellation).ConfigureAwait(false);
            }
            retryAfter = null;
            await inFlight.WaitAsync(cancellation).ConfigureAwait(false);
            try
            {
                using var request = new HttpRequestMessage(method, url);
                if (body is { } bytes)
                {
                    request.Content = new ReadOnlyMemoryContent(bytes);
                    request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json"); // written as it is: no header object to build per request
                }
                using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
                timer.CancelAfter(timeout);
                Interlocked.Increment(ref requests);
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead, timer.Token).ConfigureAwait(false);
                var answer = await response.Content.ReadAsByteArrayAsync(timer.Token).ConfigureAwait(false);
                if (Classify(url, (int)response.StatusCode, response.ReasonPhrase, answer, notFoundIsNull, out last) is { } document) return document;
                retryAfter = response.Headers.RetryAfter is { } after ? after.Delta ?? after.Date - DateTimeOffset.UtcNow : null;
            }
            catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
            {
                last = NoAnswer(url);
            }
            catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.ConfigurationLimitExceeded)
            {
                throw TooLarge(url, e.Message);
            }
            catch (HttpRequestException e)
            {
                last = $"{url}: {(e.InnerException ?? e).Message}"; // refused, reset, closed mid-answer
            }
            catch (IOException e)
            {
                last = $"{url}: {e.Message}";
            }
            finally { inFlight.Release(); }
            if (attempt >= retries) throw GaveUp(last, attempt);
        }
    }

    /// <summary>
    /// Sends one request now and returns it in flight; <see cref="RemoteCall.Wait"/> reads its answer (retrying as
    /// <see cref="PostAsync"/> does). Over a plain <c>http://</c> address with no proxy configured for it, the request goes
    /// over this object's own blocking keep-alive connections (<see cref="Http1Connection"/>), its answer read on the thread
    /// that waits for it: a decoder sends its rows' requests, then reads their answers in turn while the server works on the
    /// rest, with no thread-pool hop per answer. Otherwise (https, a proxy, <c>PARGS_REMOTE_SOCKETS=0</c>) it is
    /// <see cref="HttpClient"/>'s task. When every request slot (<c>--remote-concurrency</c>) is taken, the oldest answer
    /// nobody is reading yet is read here first (kept for its own wait) — so rows beyond the bound still go out as slots
    /// free up, as HttpClient's queued requests do, rather than one round trip at a time when waited for.
    /// </summary>
    public RemoteCall Begin(HttpMethod method, Uri url, ReadOnlyMemory<byte>? body)
    {
        if (!OverSockets(url)) return new RemoteCall(SendAsync(method, url, body, default), method, url);
        var call = new RemoteCall(this, method, url, body);
        TakeSlot();
        SendNow(call);
        return call;
    }

    /// <summary>How <see cref="Begin"/> reaches <paramref name="url"/>, in words (for the command's stderr).</summary>
    public string TransportFor(Uri url)
        => OverSockets(url) ? "pargs' own HTTP/1.1 connections"
            : !stepsOverSockets ? "HttpClient (PARGS_REMOTE_SOCKETS=0)"
            : url.Scheme != "http" ? $"HttpClient ({url.Scheme})"
            : "HttpClient (a proxy is set for it)";

    /// <summary>Whether requests to <paramref name="url"/> go over <see cref="Http1Connection"/>s: plain http, no proxy for it.</summary>
    internal bool OverSockets(Uri url)
    {
        if (!stepsOverSockets || url.Scheme != "http") return false;
        try { return HttpClient.DefaultProxy.GetProxy(url) is not { } proxy || proxy == url; }
        catch (Exception) { return false; }
    }

    readonly System.Collections.Concurrent.ConcurrentStack<Http1Connection> idle = new();
    /// <summary>Requests that hold a slot and whose answers nobody has read yet, oldest first (what a thread that needs a slot reads ahead).</summary>
    readonly List<RemoteCall> unread = new();
    static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(2), Lifetime = TimeSpan.FromMinutes(10), ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Sends <paramref name="call"/> on a pooled (or new) connection, holding the slot the caller took; a failure is kept for its wait.</summary>
    internal void SendNow(RemoteCall call)
    {
        call.HoldsSlot = true;
        call.Resent = false;
        call.Deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        Interlocked.Increment(ref requests);
        try
        {
            call.Connection = TakeConnection(call.Url);
            try { call.Connection.Send(RequestHead(call), (call.Body ?? ReadOnlyMemory<byte>.Empty).Span, timeout); }
            catch (Exception e) when (call.Connection.Reused && e is SocketException or IOException)
            {
                Resend(call); // the server closed this idle connection as it was taken
            }
        }
        catch (Exception e)
        {
            call.Connection?.Dispose();
            call.Connection = null;
            call.SendFailure = e; // its wait reports it (or retries); until then it holds its slot like any call unread
        }
        lock (unread) unread.Add(call);
    }

    /// <summary>
    /// Sends <paramref name="call"/> again on a new connection, once: its pooled connection failed before any byte of an
    /// answer — the server had closed it while idle (an HTTP/1.1 server may, at any time), so the request never reached
    /// it. Not a retry (HttpClient does the same); a step request only reads, so a repeat is safe either way.
    /// </summary>
    void Resend(RemoteCall call)
    {
        call.Connection?.Dispose();
        call.Connection = null;
        call.Resent = true;
        call.Connection = Http1Connection.Open(call.Url, ConnectTimeout);
        call.Connection.Send(RequestHead(call), (call.Body ?? ReadOnlyMemory<byte>.Empty).Span, timeout);
    }

    Http1Answer Receive(RemoteCall call)
    {
        var connection = call.Connection!;
        try { return connection.Receive(timeout, call.Deadline, MaxAnswerBytes); }
        catch (Exception e) when (connection.Reused && !connection.AnswerStarted && !call.Resent
            && e is IOException or SocketException { SocketErrorCode: not SocketError.TimedOut })
        {
            Resend(call);
            return call.Connection!.Receive(timeout, call.Deadline, MaxAnswerBytes);
        }
    }

    Http1Connection TakeConnection(Uri url)
    {
        string origin = Http1Connection.OriginOf(url);
        List<Http1Connection>? skipped = null; // another server's (rare: one RemoteHttp talks to one server)
        try
        {
            while (idle.TryPop(out var connection))
            {
                if (connection.Origin != origin) { (skipped ??= new()).Add(connection); continue; }
                if (connection.StillGood(IdleTimeout, Lifetime)) return connection;
                connection.Dispose();
            }
        }
        finally { if (skipped is not null) foreach (var other in skipped) idle.Push(other); }
        return Http1Connection.Open(url, ConnectTimeout);
    }

    /// <summary>The Host field: the name as DNS spells it (punycode for a non-ASCII one), brackets round IPv6, the port unless the scheme's.</summary>
    internal static string HostHeader(Uri url)
    {
        string host = url.HostNameType == UriHostNameType.IPv6 ? $"[{url.IdnHost}]" : url.IdnHost;
        return url.IsDefaultPort ? host : $"{host}:{url.Port}";
    }

    string RequestHead(RemoteCall call)
    {
        var head = new StringBuilder(160);
        head.Append(call.Method.Method).Append(' ').Append(call.Url.PathAndQuery).Append(" HTTP/1.1\r\nHost: ").Append(HostHeader(call.Url)).Append("\r\n");
        if (authorization is not null) head.Append("Authorization: ").Append(authorization).Append("\r\n");
        if (call.Body is { } body) head.Append("Content-Type: application/json\r\nContent-Length: ").Append(body.Length).Append("\r\n");
        else if (call.Method != HttpMethod.Get) head.Append("Content-Length: 0\r\n");
        return head.Append("\r\n").ToString();
    }

    /// <summary>
    /// Reads <paramref name="call"/>'s answer on this thread, retrying as <see cref="SendAsync"/> does (the backoff slept
    /// here; a retry takes a slot as <see cref="Begin"/> does).
    /// </summary>
    internal JsonDocument Read(RemoteCall call)
    {
        string last = "";
        TimeSpan? retryAfter = null;
        for (int attempt = 0; ; attempt++)
        {
            if (attempt > 0)
            {
                Interlocked.Increment(ref retried);
                Thread.Sleep(Backoff(attempt, retryAfter));
            }
            retryAfter = null;
            if (!call.HoldsSlot)
            {
                TakeSlot();
                SendNow(call);
            }
            try
            {
                if (call.SendFailure is { } failed) throw failed;
                var answer = Receive(call);
                if (call.Connection!.Reusable) { idle.Push(call.Connection); call.Connection = null; }
                if (Classify(call.Url, answer.Status, answer.Reason, answer.Body, false, out last) is { } document) return document;
                retryAfter = answer.RetryAfter;
            }
            catch (Http1TooLargeException e)
            {
                throw TooLarge(call.Url, e.Message);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
            {
                last = NoAnswer(call.Url);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
                last = $"{call.Url}: {e.Message}"; // refused, reset, closed mid-answer, not HTTP
            }
            finally { Settle(call); }
            if (attempt >= retries) throw GaveUp(last, attempt);
        }
    }

    /// <summary>Ends an attempt: its connection closed unless it went back to the pool, its slot released, its failure forgotten.</summary>
    internal void Settle(RemoteCall call)
    {
        call.Connection?.Dispose();
        call.Connection = null;
        call.SendFailure = null;
        lock (unread) unread.Remove(call);
        if (call.HoldsSlot)
        {
            call.HoldsSlot = false;
            inFlight.Release();
        }
    }

    /// <summary>
    /// Takes a request slot: when every slot is held by a request whose answer nobody is reading, reads the oldest such
    /// answer ahead (kept for that call's own wait) — so that a thread never waits for a slot that only its own later
    /// reads would free.
    /// </summary>
    void TakeSlot()
    {
        while (!inFlight.Wait(0))
        {
            RemoteCall? oldest;
            lock (unread) oldest = unread.Count > 0 ? unread[0] : null;
            // Every slot held, none by an answer waiting to be read: a call is being sent (it joins the list when sent) or settled.
            // Wait a little and look again — never without end: the sender may be the thread that will read what frees one.
            if (oldest is null) { if (inFlight.Wait(5)) return; continue; }
            oldest.ReadAhead(); // its answer kept for its own wait, its slot freed
        }
    }

    // The failures both transports report alike (SendAsync over HttpClient, Read over Http1Connection).
    string NoAnswer(Uri url) => $"{url}: no answer within {timeout.TotalSeconds:G4} s (the per-request timeout)";

    static PargsException TooLarge(Uri url, string detail)
        => new($"{url}: the answer is larger than pargs reads of one ({MaxAnswerBytes >> 20} MiB of body, 64 KiB of headers; a step's answer is a few KB): {detail}");

    static PargsException GaveUp(string last, int attempt) => new($"{last} (gave up after {attempt + 1} attempt{(attempt == 0 ? "" : "s")})");

    /// <summary>
    /// What an answer means: a 2xx's JSON (returned), a status a retry can fix (null, and <paramref name="retryable"/> says
    /// what failed), anything else a <see cref="PargsException"/> naming the URL, the status and the server's own message.
    /// </summary>
    static JsonDocument? Classify(Uri url, int status, string? reason, byte[] answer, bool notFoundIsNull, out string retryable)
    {
        if (status is >= 200 and < 300)
        {
            try { retryable = ""; return JsonDocument.Parse(answer); }
            catch (JsonException e) { throw new PargsException($"{url}: the server answered {status} with a body that is not JSON ({e.Message}): {Excerpt(answer)}"); }
        }
        if (status == 404 && notFoundIsNull) throw new NotFound();
        string serverMessage = ServerMessage(answer);
        string message = $"{url}: HTTP {status} {reason}: {serverMessage}";
        if (status is not (429 or 502 or 503 or 504)) throw new PargsException(message, new RemoteStatusException(status, serverMessage, ErrorParam(answer)));
        retryable = message;
        return null;
    }

    /// <summary>retryBase · 2^(attempt−1) · U(0.5, 1.5), or the server's Retry-After (at most 30 s) when it sent one.</summary>
    TimeSpan Backoff(int attempt, TimeSpan? retryAfter)
    {
        if (retryAfter is { } wait && wait > TimeSpan.Zero) return wait < TimeSpan.FromSeconds(30) ? wait : TimeSpan.FromSeconds(30);
        double factor = Math.Pow(2, attempt - 1) * (0.5 + Random.Shared.NextDouble());
        return TimeSpan.FromMilliseconds(retryBase.TotalMilliseconds * factor);
    }

    /// <summary>
    /// The server's own error message: OpenAI's/vLLM's/llama.cpp's <c>{"error": {"message"}}</c>, vLLM's older
    /// <c>{"object": "error", "message"}</c>, FastAPI's <c>{"detail"}</c> (SGLang), else the body's start.
    /// </summary>
    public static string ServerMessage(byte[] body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("error", out var error))
                {
                    if (error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String) return Shorten(m.GetString()!);
                    if (error.ValueKind == JsonValueKind.String) return Shorten(error.GetString()!);
                }
                if (root.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String) return Shorten(message.GetString()!);
                if (root.TryGetProperty("detail", out var detail)) return Shorten(detail.ValueKind == JsonValueKind.String ? detail.GetString()! : detail.GetRawText());
            }
        }
        catch (JsonException) { }
        return Excerpt(body);
    }

    /// <summary>OpenAI's <c>{"error": {"param"}}</c>: the field a refusal names, else null.</summary>
    static string? ErrorParam(byte[] body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement is { ValueKind: JsonValueKind.Object } root && root.TryGetProperty("error", out var error)
                && error.ValueKind == JsonValueKind.Object && error.TryGetProperty("param", out var param) && param.ValueKind == JsonValueKind.String
                ? param.GetString() : null;
        }
        catch (JsonException) { return null; }
    }

    static string Excerpt(byte[] body) => body.Length == 0 ? "(empty body)" : Shorten(Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, 300)).ReplaceLineEndings(" "));

    static string Shorten(string text) => text.Length > 300 ? text[..300] + "…" : text;

    public void Dispose()
    {
        client.Dispose();
        while (idle.TryPop(out var connection)) connection.Dispose();
        inFlight.Dispose();
    }
}
