namespace Pargs.Templates;

/// <summary>
/// Every problem a template causes — bad syntax, an error raised while rendering, a limit reached — becomes a
/// <see cref="PargsException"/> naming the template's source (its file) and line: a template is untrusted text.
/// </summary>
static class JinjaErrors
{
    public static PargsException At(string source, int line, string message) =>
        new($"chat template {source}, line {line}: {message}");
}

/// <summary>An error thrown during rendering before the template source is known; the interpreter adds it.</summary>
sealed class JinjaRuntimeException(string message, int line) : Exception(message)
{
    public int Line { get; } = line;
}
