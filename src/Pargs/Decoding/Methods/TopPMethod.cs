namespace Pargs.Decoding.Methods;

/// <summary>Nucleus sampling: a draw among the smallest set of most likely tokens whose probability reaches p.</summary>
public sealed record TopPOptions : ITokenwiseOptions
{
    public double P { get; init; } = MethodSettings.DefaultTopP;
    public double Temperature { get; init; } = MethodSettings.DefaultTemperature;

    public DecodingMethod Method => DecodingMethods.TopP;
    public void Validate(int vocabSize)
    {
        OptionChecks.Temperature(Temperature, Method);
        if (!(P > 0 && P <= 1)) throw new PargsException($"--top-p must be in (0, 1], got {P}");
    }
    public int? RecordK => null;
    public double? RecordW => null;
    public TokenRule CreateRule() => new TopPRule(P, Temperature);

    internal static TopPOptions From(MethodSettings s) => new()
    {
        P = s.TopP ?? MethodSettings.DefaultTopP,
        Temperature = s.Temperature ?? MethodSettings.DefaultTemperature,
    };
}

sealed class TopPRule(double p, double temperature) : TokenRule
{
    public override long[] Choose(TokenwiseStep step)
    {
        var (candLogp, candIds) = step.Next.TopP(p);
        var chosen = DecodingSteps.Choose(candLogp, sample: true, temperature, step.RowRandom);
        return candIds.Select((ids, b) => ids[chosen[b]]).ToArray();
    }
}
