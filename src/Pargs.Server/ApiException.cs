namespace Pargs.Server;

/// <summary>
/// A request the server refuses, with the HTTP status and the fields of OpenAI's error body
/// (<c>{"error": {"message", "type", "param", "code"}}</c>); <see cref="Param"/> names the offending request field.
/// </summary>
public sealed class ApiException(int status, string message, string? param = null, string? code = null, string type = "invalid_request_error")
    : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type;

    /// <summary>400 invalid_request_error naming the request field.</summary>
    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param, code);
}
