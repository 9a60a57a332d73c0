namespace Pargs.Templates;

/// <summary>
/// What Jinja's <c>map</c>, <c>select</c>, <c>reject</c>, <c>selectattr</c>, <c>rejectattr</c> and <c>items</c>
/// filters return: a Python generator, not a list. It iterates like a list, but is always true (even when empty),
/// has no length, cannot be indexed, sliced or written as JSON — a template must pipe it through <c>| list</c> first,
/// and transformers renders the same errors and truths.
/// </summary>
sealed class JinjaGenerator : List<object?>
{
    public JinjaGenerator(IEnumerable<object?> items) : base(items) { }
}
