namespace Pargs.Decoding.Methods;

/// <summary>
/// PARGS (the paper's method): a draw from softmax((log p + w·r) / T) over the top-k, with a reward model
/// trained on every prefix of a response (<c>train-rm --objective partial</c>).
/// </summary>
public sealed record PargsOptions : ITokenwiseOptions
{
    public int K { get; init; } = MethodSettings.DefaultK;
    public double W { get; init; } = MethodSettings.DefaultW;
    public double Temperature { get; init; } = MethodSettings.DefaultTemperature;

    public DecodingMethod Method => DecodingMethods.Pargs;
    public void Validate(int vocabSize)
    {
        OptionChecks.K(K, vocabSize);
        OptionChecks.Temperature(Temperature, Method);
        OptionChecks.W(W);
    }
    public int? RecordK => K;
    public double? RecordW => W;
    public TokenRule CreateRule() => new GuidedRule(K, W, sample: true, Temperature);

    internal static PargsOptions From(MethodSettings s) => new()
    {
        K = s.K ?? MethodSettings.DefaultK,
        W = s.W ?? MethodSettings.DefaultW,
        Temperature = s.Temperature ?? MethodSettings.DefaultTemperature,
    };
}
