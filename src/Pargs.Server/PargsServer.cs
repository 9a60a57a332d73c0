using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Pargs.Server;

/// <summary>
/// `pargs serve`: an OpenAI-compatible HTTP server (Kestrel) over served models and a generation backend.
/// <code>
///   await using var server = await PargsServer.StartAsync(models, new PargsServerOptions { Port = 0 });
///   Console.WriteLine(server.Url); // http://127.0.0.1:PORT/
/// </code>
/// SIGTERM (or <see cref="StopAsync"/>) stops accepting connections, lets admitted requests finish within
/// <see cref="ServerLimits.ShutdownGrace"/>, then returns.
/// </summary>
public sealed class PargsServer : IAsyncDisposable
{
    readonly WebApplication app;
    readonly IGenerationBackend backend;
    readonly bool ownsBackend;

    PargsServer(WebApplication app, IGenerationBackend backend, bool ownsBackend, Uri url, ServerMetrics metrics)
    {
        this.app = app;
        this.backend = backend;
        this.ownsBackend = ownsBackend;
        Url = url;
        Metrics = metrics;
    }

    /// <summary>The base address, e.g. http://127.0.0.1:8000/ (OpenAI clients take Url + "v1").</summary>
    public Uri Url { get; }
    public ServerMetrics Metrics { get; }

    /// <summary>
    /// Binds and starts serving. Refuses (PargsException) a non-loopback address without an API key, a host that is not
    /// an IP address, and a port out of range.
    /// </summary>
    public static async Task<PargsServer> StartAsync(ServedModels models, PargsServerOptions options, IGenerationBackend? backend = null, CancellationToken cancellation = default)
    {
        var address = ParseHost(options.Host);
        if (!IPAddress.IsLoopback(address) && string.IsNullOrEmpty(options.ApiKey))
            throw new PargsException($"--host {options.Host}: binding an address other than loopback needs --api-key (clients then send Authorization: Bearer KEY)");
        if (options.Port is < 0 or > 65535) throw new PargsException($"--port {options.Port}: expected 0 (any free port) to 65535");
        if (!models.LanguageModels.Any()) throw new PargsException("the server has no language model to serve");

        var limits = options.Limits;
        bool ownsBackend = backend is null;
        backend ??= new BatchingGenerationBackend(models, limits);
        var metrics = new ServerMetrics();
        var admission = new RequestAdmission(limits, metrics);
        var endpoints = new OpenAiEndpoints(models, backend, limits, metrics, admission);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "Pargs.Server", ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        if (options.ConsoleLog) builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning)
            .AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = limits.ShutdownGrace);
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(address, options.Port);
            k.Limits.MaxRequestBodySize = limits.MaxBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            k.AddServerHeader = false;
        });
        builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = InlineScheduling(Environment.GetEnvironmentVariable));
        var app = builder.Build();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Pargs.Server");

        app.Use((context, next) => ErrorHandling.Middleware(context, () => next(context), metrics, logger));
        if (!string.IsNullOrEmpty(options.ApiKey))
        {
            byte[] expected = Encoding.UTF8.GetBytes("Bearer " + options.ApiKey);
            app.Use(async (context, next) =>
            {
                if (context.Request.Path.StartsWithSegments("/v1") || context.Request.Path.StartsWithSegments("/metrics") || context.Request.Path.StartsWithSegments("/tokenize"))
                {
                    byte[] given = Encoding.UTF8.GetBytes(context.Request.Headers.Authorization.ToString());
                    if (!CryptographicOperations.FixedTimeEquals(given, expected))
                        throw new ApiException(401, "Incorrect or missing API key: send Authorization: Bearer KEY.", code: "invalid_api_key");
                }
                await next(context);
            });
        }
        app.MapGet("/health", () => Results.Text("{\"status\":\"ok\"}", "application/json"));
        app.MapGet("/metrics", () => Results.Text(metrics.Render(backend.QueueDepth, backend.Metrics), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/v1/models", endpoints.Models);
        app.MapPost("/v1/completions", endpoints.Completions);
        app.MapPost("/v1/chat/completions", endpoints.ChatCompletions);
        app.MapPost("/v1/rewards", endpoints.Rewards);
        app.MapPost("/tokenize", new TokenizeEndpoint(models, limits).Tokenize);
        app.MapFallback(context => throw (HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsPost(context.Request.Method)
            ? new ApiException(404, $"Unknown route {context.Request.Method} {RequestJson.Shorten(context.Request.Path.Value ?? "")}.", code: "unknown_url", type: "invalid_request_error")
            : new ApiException(405, $"Method {RequestJson.Shorten(context.Request.Method)} is not allowed here.", code: "method_not_allowed")));

        try
        {
            await app.StartAsync(cancellation);
        }
        catch (IOException e) // address in use, permission denied: the user's to fix
        {
            await app.DisposeAsync();
            if (ownsBackend) backend.Dispose();
            throw new PargsException($"cannot listen on {options.Host}:{options.Port}: {e.Message}");
        }
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var url = new Uri(bound.EndsWith('/') ? bound : bound + "/");
        return new PargsServer(app, backend, ownsBackend, url, metrics);
    }

    /// <summary>
    /// Whether Kestrel runs a request on the thread that received it and sends an answer on the thread that wrote it
    /// (<c>SocketTransportOptions.UnsafePreferInlineScheduling</c>), instead of handing each to the thread pool.
    /// WHY: a remote steering client sends two small requests per row and step (issue 18); the two hand-offs per request —
    /// receive → handler, handler → send — were half the thread pool's work items and their wake-ups a large part of its
    /// CPU (docs/benchmarks.md, s14-wire). Safe here because the thread that received is a thread-pool thread: .NET's
    /// socket engine hands every completion to the pool unless DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1, so a slow
    /// handler (a long text to tokenize) holds one pool thread, as it did after the hand-off, never the socket engine's
    /// epoll thread; no handler blocks on the generation worker (they await it, and the worker's completions run their
    /// continuations asynchronously). With that variable set, the received data would be processed on the epoll thread
    /// itself, where one slow handler stalls every connection: the hand-off stays. PARGS_KESTREL_INLINE=0 keeps it too
    /// (A/B runs of one build).
    /// </summary>
    internal static bool InlineScheduling(Func<string, string?> environment)
        => environment("PARGS_KESTREL_INLINE") != "0" && environment("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") != "1";

    static IPAddress ParseHost(string host)
    {
        if (host == "localhost") return IPAddress.Loopback;
        if (IPAddress.TryParse(host.Trim('[', ']'), out var address)) return address;
        throw new PargsException($"--host {host}: expected an IP address (127.0.0.1, ::1, 0.0.0.0, …) or localhost");
    }

    /// <summary>Runs until SIGTERM / Ctrl+C (or <paramref name="cancellation"/>), then shuts down gracefully.</summary>
    public async Task WaitForShutdownAsync(CancellationToken cancellation = default) => await app.WaitForShutdownAsync(cancellation);

    public async Task StopAsync() => await app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        try { await app.StopAsync(); } catch (ObjectDisposedException) { }
        await app.DisposeAsync();
        if (ownsBackend) backend.Dispose();
    }
}
