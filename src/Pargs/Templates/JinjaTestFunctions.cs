namespace Pargs.Templates;

/// <summary>Jinja's tests (<c>x is defined</c>, <c>x is string</c>, <c>x is divisibleby 3</c>...).</summary>
static class JinjaTestFunctions
{
    public static bool Run(string name, object? value, List<object?> arguments, int line)
    {
        object? Argument()
        {
            if (arguments.Count != 1) throw new JinjaRuntimeException($"test '{name}' takes one argument, got {arguments.Count}", line);
            return arguments[0];
        }
        void NoArguments()
        {
            if (arguments.Count != 0) throw new JinjaRuntimeException($"test '{name}' takes no argument", line);
        }
        switch (name)
        {
            case "defined": NoArguments(); return value is not JinjaUndefined;
            case "undefined": NoArguments(); return value is JinjaUndefined;
            case "none": NoArguments(); return value is null;
            case "boolean": NoArguments(); return value is bool;
            case "true": NoArguments(); return value is true;
            case "false": NoArguments(); return value is false;
            case "integer": NoArguments(); return value is long;
            case "float": NoArguments(); return value is double;
            case "number": NoArguments(); return value is long or double or bool;
            case "string": NoArguments(); return value is string;
            case "mapping": NoArguments(); return value is Dictionary<string, object?>;
            case "sequence": NoArguments(); return value is string or List<object?> or Dictionary<string, object?>;
            case "iterable": NoArguments(); return value is string or List<object?> or Dictionary<string, object?>;
            case "callable": NoArguments(); return value is IJinjaCallable;
            case "lower": NoArguments(); return value is string ls && ls.ToLowerInvariant() == ls;
            case "upper": NoArguments(); return value is string us && us.ToUpperInvariant() == us;
            case "odd": NoArguments(); return Integer(value, name, line) % 2 != 0;
            case "even": NoArguments(); return Integer(value, name, line) % 2 == 0;
            case "divisibleby":
            {
                long divisor = Integer(Argument(), name, line);
                if (divisor == 0) throw new JinjaRuntimeException("divisibleby 0", line);
                return Integer(value, name, line) % divisor == 0;
            }
            case "eq" or "equalto" or "==": return JinjaValues.Equals(value, Argument());
            case "ne" or "!=": return !JinjaValues.Equals(value, Argument());
            case "lt" or "lessthan" or "<": return JinjaValues.Compare(value, Argument(), "<", line) < 0;
            case "le" or "<=": return JinjaValues.Compare(value, Argument(), "<=", line) <= 0;
            case "gt" or "greaterthan" or ">": return JinjaValues.Compare(value, Argument(), ">", line) > 0;
            case "ge" or ">=": return JinjaValues.Compare(value, Argument(), ">=", line) >= 0;
            case "in": return JinjaValues.Contains(Argument(), value, line);
            case "sameas":
            {
                var other = Argument();
                return value is null or bool ? Equals(value, other) : ReferenceEquals(value, other) || (value is long && JinjaValues.Equals(value, other) && other is long);
            }
        }
        throw new JinjaRuntimeException($"unknown test '{name}'", line);
    }

    static long Integer(object? value, string test, int line) => value is long or bool
        ? JinjaValues.ToLong(value)
        : throw new JinjaRuntimeException($"test '{test}' needs an integer, got {JinjaValues.TypeName(value)}", line);
}
