namespace Pargs.Models.Families;

/// <summary>
/// One tensor a model declares: its Hugging Face name and shape. A shape entry of -1 means "any size"
/// (e.g. the number of labels of a score head).
/// </summary>
public sealed record TensorSpec(string Name, long[] Shape)
{
    public TensorSpec WithPrefix(string prefix) => this with { Name = prefix + "." + Name };
}
