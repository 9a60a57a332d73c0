using System.Net;
using System.Net.Http.Headers;
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
    long requests, retried;

    public RemoteHttp(int concurrency, TimeSpan timeout, int retries, TimeSpan retryBase, string? apiKey)
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
        if (!string.IsNullOrEmpty(apiKey)) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
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
                int status = (int)response.StatusCode;
                if (status is >= 200 and < 300)
                {
                    try { return JsonDocument.Parse(answer); }
                    catch (JsonException e) { throw new PargsException($"{url}: the server answered {status} with a body that is not JSON ({e.Message}): {Excerpt(answer)}"); }
                }
                if (status == 404 && notFoundIsNull) throw new NotFound();
                string serverMessage = ServerMessage(answer);
                string message = $"{url}: HTTP {status} {response.ReasonPhrase}: {serverMessage}";
                if (status is not (429 or 502 or 503 or 504)) throw new PargsException(message, new RemoteStatusException(status, serverMessage, ErrorParam(answer)));
                last = message;
                retryAfter = response.Headers.RetryAfter?.Delta;
            }
            catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
            {
                last = $"{url}: no answer within {timeout.TotalSeconds:G4} s (the per-request timeout)";
            }
            catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.ConfigurationLimitExceeded)
            {
                throw new PargsException($"{url}: the answer is larger than pargs reads of one ({MaxAnswerBytes >> 20} MiB of body, 64 KiB of headers; a step's answer is a few KB): {e.Message}");
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
            if (attempt >= retries)
                throw new PargsException($"{last} (gave up after {attempt + 1} attempt{(attempt == 0 ? "" : "s")})");
        }
    }

    /// <summary>
    /// Blocks until every task has ended, then throws the first <see cref="PargsException"/> among their failures (else
    /// the first failure), without <see cref="Task.WaitAll(Task[])"/>'s spinning (<see cref="BlockingWait"/>).
    /// </summary>
    public static void WaitAll(Task[] tasks)
    {
        var all = Task.WhenAll(tasks);
        BlockingWait.Until(all);
        if (all.Exception is { } e)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions.FirstOrDefault(x => x is PargsException) ?? e.InnerExceptions[0]);
        if (all.IsCanceled) throw new OperationCanceledException();
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
        inFlight.Dispose();
    }
}
