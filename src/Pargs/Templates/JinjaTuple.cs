namespace Pargs.Templates;

/// <summary>
/// A Python tuple (<c>(a, b)</c>, <c>dict.items()</c> pairs): a list everywhere, except that it prints as
/// <c>('a', 1)</c> as Python prints tuples.
/// </summary>
sealed class JinjaTuple : List<object?>
{
    public JinjaTuple(IEnumerable<object?> items) : base(items) { }
}
