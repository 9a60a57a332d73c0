namespace Pargs.Templates;

/// <summary>The arguments of one call as evaluated: positional then keyword, in source order.</summary>
sealed class JinjaArguments(List<object?> positional, List<KeyValuePair<string, object?>> named, int line)
{
    public static JinjaArguments Empty(int line) => new([], [], line);
    public List<object?> Positional { get; } = positional;
    public List<KeyValuePair<string, object?>> Named { get; } = named;
    public int Line { get; } = line;

    /// <summary>The argument at <paramref name="position"/> or named <paramref name="name"/>, else <paramref name="fallback"/>.</summary>
    public object? Get(int position, string name, object? fallback)
    {
        foreach (var (key, value) in Named) if (key == name) return value;
        return position >= 0 && position < Positional.Count ? Positional[position] : fallback;
    }

    public bool Has(int position, string name) =>
        (position >= 0 && position < Positional.Count) || Named.Any(n => n.Key == name);

    /// <summary>Refuses arguments the callee does not take, rather than ignoring them.</summary>
    public void Check(string callee, int maxPositional, params string[] names)
    {
        if (Positional.Count > maxPositional)
            throw new JinjaRuntimeException($"{callee} takes at most {maxPositional} positional argument(s), got {Positional.Count}", Line);
        foreach (var (key, _) in Named)
            if (!names.Contains(key)) throw new JinjaRuntimeException($"{callee} got an unexpected keyword argument '{key}'", Line);
    }
}

/// <summary>Anything a template can call: a macro, a global function such as <c>range</c>, a bound string or dict method.</summary>
interface IJinjaCallable
{
    object? Call(JinjaInterpreter interpreter, JinjaArguments arguments);
}

/// <summary>A function provided by the environment (<c>range</c>, <c>namespace</c>, <c>raise_exception</c>...).</summary>
sealed class JinjaFunction(string name, Func<JinjaInterpreter, JinjaArguments, object?> body) : IJinjaCallable
{
    public string Name { get; } = name;
    public object? Call(JinjaInterpreter interpreter, JinjaArguments arguments) => body(interpreter, arguments);
}

/// <summary>A method looked up on a value (<c>text.strip</c>, <c>message.get</c>), called later with its arguments.</summary>
sealed class JinjaBoundMethod(object? target, string name) : IJinjaCallable
{
    public object? Target { get; } = target;
    public string Name { get; } = name;
    public object? Call(JinjaInterpreter interpreter, JinjaArguments arguments) => JinjaMethods.Call(Target, Name, arguments);
}
