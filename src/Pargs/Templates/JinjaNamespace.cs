namespace Pargs.Templates;

/// <summary>
/// <c>namespace(...)</c>: the one object a template may assign attributes on (<c>{% set ns.x = … %}</c>), which is
/// how a value set inside a loop survives the loop's scope.
/// </summary>
sealed class JinjaNamespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}
