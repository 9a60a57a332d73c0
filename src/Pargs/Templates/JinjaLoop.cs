namespace Pargs.Templates;

/// <summary>The <c>loop</c> variable inside a for loop: index, index0, revindex, revindex0, first, last, length, previtem, nextitem, cycle.</summary>
sealed class JinjaLoop(IReadOnlyList<object?> items)
{
    public int Index0 { get; set; }
    public IReadOnlyList<object?> Items { get; } = items;

    public object? Attribute(string name, int line) => name switch
    {
        "index" => (long)(Index0 + 1),
        "index0" => (long)Index0,
        "revindex" => (long)(Items.Count - Index0),
        "revindex0" => (long)(Items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == Items.Count - 1,
        "length" => (long)Items.Count,
        "depth" => 1L,
        "depth0" => 0L,
        "previtem" => Index0 > 0 ? Items[Index0 - 1] : new JinjaUndefined("loop.previtem"),
        "nextitem" => Index0 + 1 < Items.Count ? Items[Index0 + 1] : new JinjaUndefined("loop.nextitem"),
        "cycle" => new JinjaFunction("loop.cycle", (_, args) =>
        {
            if (args.Positional.Count == 0) throw new JinjaRuntimeException("loop.cycle() needs at least one value", args.Line);
            return args.Positional[Index0 % args.Positional.Count];
        }),
        _ => new JinjaUndefined($"loop.{name}"),
    };
}
