namespace Pargs.Decoding.Methods;

/// <summary>PARGS-G: the argmax of the PARGS score log p + w·r over the top-k, with a partial-sequence reward model.</summary>
public sealed record PargsGreedyOptions : GuidedArgmaxOptions
{
    public override DecodingMethod Method => DecodingMethods.PargsGreedy;

    internal static PargsGreedyOptions From(MethodSettings s) => new() { K = s.K ?? MethodSettings.DefaultK, W = s.W ?? MethodSettings.DefaultW };
}
