namespace Pargs.Templates;

/// <summary>
/// A <c>{% macro %}</c> (or the <c>caller</c> of a <c>{% call %}</c> block): called with positional and keyword
/// arguments, defaults evaluated at call time, extra arguments in <c>varargs</c>/<c>kwargs</c>; returns its
/// rendered body. It sees the scope it was defined in.
/// </summary>
sealed class JinjaMacro(string name, List<MacroParameter> parameters, List<JinjaNode> body, JinjaScope closure) : IJinjaCallable
{
    public string Name { get; } = name;

    public object? Call(JinjaInterpreter interpreter, JinjaArguments arguments)
    {
        var scope = new JinjaScope(closure);
        var extraPositional = new List<object?>();
        for (int i = 0; i < arguments.Positional.Count; i++)
        {
            if (i < parameters.Count) scope.Set(parameters[i].Name, arguments.Positional[i]);
            else extraPositional.Add(arguments.Positional[i]);
        }
        var extraNamed = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in arguments.Named)
        {
            int at = parameters.FindIndex(p => p.Name == key);
            if (at >= 0 && at < arguments.Positional.Count)
                throw new JinjaRuntimeException($"macro '{Name}' got multiple values for argument '{key}'", arguments.Line);
            if (at >= 0 || key == "caller") scope.Set(key, value);
            else extraNamed[key] = value;
        }
        foreach (var parameter in parameters.Skip(arguments.Positional.Count))
        {
            if (arguments.Named.Any(n => n.Key == parameter.Name)) continue;
            scope.Set(parameter.Name, parameter.Default is null
                ? new JinjaUndefined($"parameter '{parameter.Name}' of macro '{Name}'")
                : interpreter.Evaluate(parameter.Default, scope));
        }
        scope.Set("varargs", extraPositional);
        scope.Set("kwargs", extraNamed);
        return interpreter.RenderMacroBody(this, body, scope, arguments.Line);
    }
}
