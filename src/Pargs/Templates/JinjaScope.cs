namespace Pargs.Templates;

/// <summary>
/// A variable scope. Jinja's rules: a for-loop iteration and a macro call each get a child scope, so a
/// <c>set</c> inside them does not change the name outside (hence <c>namespace</c>); if-blocks share their scope.
/// </summary>
sealed class JinjaScope(JinjaScope? parent)
{
    readonly Dictionary<string, object?> variables = new(StringComparer.Ordinal);

    public JinjaScope? Parent { get; } = parent;

    public bool TryLookup(string name, out object? value)
    {
        for (var scope = this; scope != null; scope = scope.Parent)
            if (scope.variables.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }

    public void Set(string name, object? value) => variables[name] = value;
}
