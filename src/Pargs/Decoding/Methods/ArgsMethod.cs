namespace Pargs.Decoding.Methods;

/// <summary>ARGS (Khanov et al.): the argmax over the top-k of log p + w·r, with a reward model trained on full responses.</summary>
public sealed record ArgsOptions : GuidedArgmaxOptions
{
    public override DecodingMethod Method => DecodingMethods.Args;

    internal static ArgsOptions From(MethodSettings s) => new() { K = s.K ?? MethodSettings.DefaultK, W = s.W ?? MethodSettings.DefaultW };
}

/// <summary>
/// The argmax of log p + w·r over the top-k — ARGS's and PARGS-G's rule. The two differ only in the reward
/// model they are defined with (full-sequence vs every prefix), which their registrations state.
/// </summary>
public abstract record GuidedArgmaxOptions : ITokenwiseOptions
{
    public int K { get; init; } = MethodSettings.DefaultK;
    public double W { get; init; } = MethodSettings.DefaultW;

    public abstract DecodingMethod Method { get; }
    public void Validate(int vocabSize)
    {
        OptionChecks.K(K, vocabSize);
        OptionChecks.W(W);
    }
    public int? RecordK => K;
    public double? RecordW => W;
    public TokenRule CreateRule() => new GuidedRule(K, W, sample: false, temperature: 1.0);
}
