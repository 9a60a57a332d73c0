namespace Pargs.Server;

/// <summary>Where and how the server listens.</summary>
public sealed record PargsServerOptions
{
    /// <summary>An IP address to bind; loopback by default. Any other needs <see cref="ApiKey"/>.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 = a free port chosen by the system (see <see cref="PargsServer.Url"/>).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>When set, every /v1 request must carry <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }
    public ServerLimits Limits { get; init; } = new();
    /// <summary>Log requests' server errors and start/stop lines to the console.</summary>
    public bool ConsoleLog { get; init; }
}
