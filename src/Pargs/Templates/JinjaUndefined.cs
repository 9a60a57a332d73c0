namespace Pargs.Templates;

/// <summary>
/// A missing variable, key or attribute, with Jinja's default <c>Undefined</c> behaviour (the one transformers'
/// sandboxed environment uses): it prints as nothing, is false, iterates as empty and has length 0, but any
/// attribute, item, call or arithmetic on it is an error naming what was missing.
/// </summary>
sealed class JinjaUndefined(string description)
{
    public string Description { get; } = description;
    public JinjaRuntimeException Error(int line) => new($"{Description} is undefined", line);
    public override string ToString() => "";
}
