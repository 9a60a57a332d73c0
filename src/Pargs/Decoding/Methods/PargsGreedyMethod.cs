namespace Pargs.Decoding.Methods;

/// <summary>PARGS-G: the argmax of the PARGS score log p + w·r over the top-k, with a partial-sequence reward model.</summary>
public sealed record PargsGreedyOptions : ITokenwiseOptions
{
    public int K { get; init; } = MethodSettings.DefaultK;
    public double W { get; init; } = MethodSettings.DefaultW;

    public DecodingMethod Method => DecodingMethods.PargsGreedy;
    public void Validate(int vocabSize)
    {
        OptionChecks.K(K, vocabSize);
        OptionChecks.W(W);
    }
    public int? RecordK => K;
    public double? RecordW => W;
    public TokenRule CreateRule() => new GuidedRule(K, W, sample: false, temperature: 1.0);

    internal static PargsGreedyOptions From(MethodSettings s) => new() { K = s.K ?? MethodSettings.DefaultK, W = s.W ?? MethodSettings.DefaultW };
}
