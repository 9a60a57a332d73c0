using Pargs.Rewards;

namespace Pargs.Decoding.Methods;

/// <summary>ARGS (Khanov et al.): the argmax over the top-k of log p + w·r, with a reward model trained on full responses.</summary>
public sealed record ArgsOptions : ITokenwiseOptions
{
    public int K { get; init; } = MethodSettings.DefaultK;
    public double W { get; init; } = MethodSettings.DefaultW;

    public DecodingMethod Method => DecodingMethods.Args;
    public void Validate(int vocabSize)
    {
        OptionChecks.K(K, vocabSize);
        OptionChecks.W(W);
    }
    public int? RecordK => K;
    public double? RecordW => W;
    public TokenRule CreateRule() => new GuidedRule(K, W, sample: false, temperature: 1.0);

    internal static ArgsOptions From(MethodSettings s) => new() { K = s.K ?? MethodSettings.DefaultK, W = s.W ?? MethodSettings.DefaultW };
}
