namespace Pargs.Decoding.Methods;

/// <summary>Top-k sampling: a draw from softmax(log p / T) over the base LM's k most likely tokens.</summary>
public sealed record TopKOptions : ITokenwiseOptions
{
    public int K { get; init; } = MethodSettings.DefaultK;
    public double Temperature { get; init; } = MethodSettings.DefaultTemperature;

    public DecodingMethod Method => DecodingMethods.TopK;
    public void Validate(int vocabSize)
    {
        OptionChecks.K(K, vocabSize);
        OptionChecks.Temperature(Temperature, Method);
    }
    public int? RecordK => K;
    public double? RecordW => null;
    public TokenRule CreateRule() => new TopKRule(K, Temperature);

    internal static TopKOptions From(MethodSettings s) => new()
    {
        K = s.K ?? MethodSettings.DefaultK,
        Temperature = s.Temperature ?? MethodSettings.DefaultTemperature,
    };
}

sealed class TopKRule(int k, double temperature) : TokenRule
{
    public override long[] Choose(TokenwiseStep step)
        => ChooseAmongTopK(step, k, scores => DecodingSteps.Choose(scores, sample: true, temperature, step.RowRandom));
}
