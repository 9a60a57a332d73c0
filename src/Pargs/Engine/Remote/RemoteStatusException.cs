namespace Pargs.Engine.Remote;

/// <summary>
/// What a server said when it refused a request in a way a retry cannot fix (an HTTP status other than 2xx, 429, 502,
/// 503, 504): the <see cref="Exception.InnerException"/> of the <see cref="PargsException"/> <see cref="RemoteHttp"/>
/// throws (which stays the error callers and users see). A caller that asks a question by a request — does this server
/// take a field? — tells a refusal of that field (400 naming it) from anything else, which stays an error.
/// </summary>
public sealed class RemoteStatusException(int status, string serverMessage, string? param)
    : Exception($"HTTP {status}: {serverMessage}")
{
    public int Status { get; } = status;
    /// <summary>The server's own error message (<see cref="RemoteHttp.ServerMessage"/>).</summary>
    public string ServerMessage { get; } = serverMessage;
    /// <summary>OpenAI's <c>error.param</c>: the request field the server refused, when it says.</summary>
    public string? Param { get; } = param;
}
