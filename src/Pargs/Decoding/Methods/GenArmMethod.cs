using static TorchSharp.torch;

namespace Pargs.Decoding.Methods;

/// <summary>
/// GenARM (Xu et al., ICLR 2025): sampling from π_decode(v) ∝ π_base(v | x, y&lt;t) · π_r(v | x, y&lt;t)^α, with an
/// autoregressive reward model π_r (<c>train-rm --objective genarm</c>), over the WHOLE vocabulary. α is -w.
/// <para>Their code evaluates the formula base + α·arm over the models' log-probabilities and samples it with
/// top_k = 0, top_p = 1 at temperature 1/(1+α), its comment calling that "π_decode at temperature 1": the formula
/// is normalised by its weights, (log π_base + α log π_r)/(1+α), so dividing by 1/(1+α) gives back
/// log π_base + α log π_r. Pargs states the distribution directly: softmax((log π_base + α·log π_r) / T), with
/// --temperature T = 1 (the default) being their setting.</para>
/// </summary>
public sealed record GenArmOptions : ITokenwiseOptions
{
    /// <summary>α, the weight of the reward model's log-probabilities (their default: 1).</summary>
    public double Alpha { get; init; } = MethodSettings.DefaultW;
    public double Temperature { get; init; } = MethodSettings.DefaultTemperature;

    public DecodingMethod Method => DecodingMethods.GenArm;
    public void Validate(int vocabSize)
    {
        OptionChecks.Temperature(Temperature, Method);
        OptionChecks.W(Alpha);
    }
    public int? RecordK => null;
    public double? RecordW => Alpha;
    public TokenRule CreateRule() => new GenArmRule(Alpha, Temperature);

    internal static GenArmOptions From(MethodSettings s) => new()
    {
        Alpha = s.W ?? MethodSettings.DefaultW,
        Temperature = s.Temperature ?? MethodSettings.DefaultTemperature,
    };
}

/// <summary>
/// GenARM's rule: s = log π_base + α·log π_r over every token [B, V] (the reward model's one token per step),
/// then one draw per row from softmax(s / T) over the whole vocabulary, with the row's own seeded stream.
/// </summary>
sealed class GenArmRule(double alpha, double temperature) : TokenRule
{
    // [B][V] scores and the softmax's [V] weights, reused from step to step: on a 32k vocabulary each is a large
    // object (128 KB and 256 KB), and a fresh pair per token kept the garbage collector's full collections busy.
    float[][] scores = [];
    double[] weights = [];

    public override long[] Choose(TokenwiseStep step)
    {
        var scorer = VocabularyTopKRule.VocabularyScorerOf(step, DecodingMethods.GenArm);
        using (var rows = VocabularyRows.Read(step.Next.LogProbs, scorer.Values, alpha, DecodingMethods.GenArm))
        {
            if (scores.Length != rows.Count || (rows.Count > 0 && scores[0].Length != rows.Vocab))
            {
                scores = new float[rows.Count][];
                for (int b = 0; b < rows.Count; b++) scores[b] = new float[rows.Vocab];
            }
            rows.Combine(scores); // [B][V] on the host
            if (weights.Length != rows.Vocab) weights = new double[rows.Vocab];
        }
        var tokens = new long[scores.Length];
        for (int b = 0; b < scores.Length; b++)
        {
            if (!step.Active[b]) continue; // a finished row's token is ignored by the loop
            foreach (var s in scores[b])
                if (!float.IsFinite(s) && !float.IsNegativeInfinity(s))
                    throw new PargsException($"log π_base + α·log π_r is {s} for a token: the reward model's or the LM's log-probabilities are not finite; check their weights and -w");
            tokens[b] = DecodingSteps.SampleSoftmax(scores[b], temperature, step.RowRandom[b], weights);
            if (step.Trace is { } trace) // a copy: the row is overwritten at the next step
                trace(new StepTrace(b, step.Index, Enumerable.Range(0, scores[b].Length).Select(i => (long)i).ToArray(), (float[])scores[b].Clone(), (int)tokens[b]));
        }
        scorer.Append(tokens);
        return tokens;
    }
}
