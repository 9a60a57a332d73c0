namespace Pargs;

/// <summary>
/// An error the user can fix: bad input, a bad file, a bad option. The message names the file, line or
/// field and what was expected. The CLI prints only the message (no stack trace) and exits non-zero;
/// anything else that escapes is a bug in Pargs.
/// </summary>
public class PargsException : Exception
{
    public PargsException(string message) : base(message) { }
    public PargsException(string message, Exception inner) : base(message, inner) { }
}
