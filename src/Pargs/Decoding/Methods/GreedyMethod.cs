namespace Pargs.Decoding.Methods;

/// <summary>Greedy: the base LM's most likely token.</summary>
public sealed record GreedyOptions : ITokenwiseOptions
{
    public DecodingMethod Method => DecodingMethods.Greedy;
    public void Validate(int vocabSize) { }
    public int? RecordK => null;
    public double? RecordW => null;
    public TokenRule CreateRule() => new GreedyRule();

    internal static GreedyOptions From(MethodSettings s) => new();
}

sealed class GreedyRule : TokenRule
{
    public override long[] Choose(TokenwiseStep step) => ChooseAmongTopK(step, 1, DecodingSteps.ArgMaxes);
}
