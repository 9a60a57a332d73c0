using Pargs.Rewards;
using Pargs.Engine;
using static TorchSharp.torch;

namespace Pargs.Decoding.Methods;

/// <summary>
/// FaRMA (Rashid et al., ICML 2025): a draw from softmax(score / T) over the top-k of
/// score(v) = log p(v) + w·r(x, y&lt;t ∘ v) over the WHOLE shared vocabulary, where the reward model's head gives
/// r(x, y&lt;t ∘ v) for every v in one forward (<c>train-rm --objective farma</c>). The top-k is taken after
/// combining, so a token the LM ranks 11th can win; the reward model reads one token per step whatever k is.
/// </summary>
public sealed record FarmaOptions : ITokenwiseOptions
{
    public int K { get; init; } = MethodSettings.DefaultK;
    public double W { get; init; } = MethodSettings.DefaultW;
    public double Temperature { get; init; } = MethodSettings.DefaultTemperature;

    public DecodingMethod Method => DecodingMethods.Farma;
    public void Validate(int vocabSize)
    {
        OptionChecks.K(K, vocabSize);
        OptionChecks.Temperature(Temperature, Method);
        OptionChecks.W(W);
    }
    public int? RecordK => K;
    public double? RecordW => W;
    public TokenRule CreateRule() => new VocabularyTopKRule(Method, K, W, sample: true, Temperature);

    internal static FarmaOptions From(MethodSettings s) => new()
    {
        K = s.K ?? MethodSettings.DefaultK,
        W = s.W ?? MethodSettings.DefaultW,
        Temperature = s.Temperature ?? MethodSettings.DefaultTemperature,
    };
}

/// <summary>FaRMA-G: the argmax of the FaRMA score log p + w·r over the whole vocabulary (top-k after combining; the argmax is the same for any k).</summary>
public sealed record FarmaGreedyOptions : ITokenwiseOptions
{
    public int K { get; init; } = MethodSettings.DefaultK;
    public double W { get; init; } = MethodSettings.DefaultW;

    public DecodingMethod Method => DecodingMethods.FarmaGreedy;
    public void Validate(int vocabSize)
    {
        OptionChecks.K(K, vocabSize);
        OptionChecks.W(W);
    }
    public int? RecordK => K;
    public double? RecordW => W;
    public TokenRule CreateRule() => new VocabularyTopKRule(Method, K, W, sample: false, temperature: 1.0);

    internal static FarmaGreedyOptions From(MethodSettings s) => new() { K = s.K ?? MethodSettings.DefaultK, W = s.W ?? MethodSettings.DefaultW };
}

/// <summary>
/// FaRMA's rule:
/// <code>
///   s = log p + w·RM_values                  [B, V], ONE reward-model token per row (scorer.Values)
///   (s_k, v_k) = TopK(s, k)                  top-k after combining
///   j = Sample(softmax(s_k / T)) | ArgMax(s_k) per row, with the row's own seeded stream
///   scorer.Append(v_j)                       the reward model's prefix grows by the chosen token
/// </code>
/// log p is the LM's log-softmax: it differs from the LM's logits by a per-row constant, which changes neither
/// the top-k nor the softmax over it.
/// </summary>
sealed class VocabularyTopKRule(DecodingMethod method, int k, double w, bool sample, double temperature) : TokenRule
{
    public override long[] Choose(TokenwiseStep step)
    {
        var scorer = VocabularyScorerOf(step, method);
        // On the host: for one row of V floats, log p + w·r and a top-k selection cost less than the torch ops
        // (and their tensors) would — measured on stories260K, where a whole step is a fraction of a millisecond.
        var combined = VocabularyRows.Combine(step.Next.LogProbs, scorer.Values, w, method);
        var ids = new long[combined.Length * k];
        var scores = new float[combined.Length][];
        for (int b = 0; b < combined.Length; b++)
        {
            var top = VocabularyRows.TopK(combined[b], k);
            scores[b] = top.Select(v => combined[b][v]).ToArray();
            for (int j = 0; j < k; j++) ids[b * k + j] = top[j];
            if (step.Active[b])
                foreach (var s in scores[b])
                    if (!float.IsFinite(s) && !float.IsNegativeInfinity(s))
                        throw new PargsException($"log p + w·r is {s} for a candidate of {method.Name}: the reward model's head (or w·r = {w}·r) is not finite; check its weights and -w");
        }
        var chosen = DecodingSteps.Choose(scores, sample, temperature, step.RowRandom);
        var tokens = chosen.Select((j, b) => ids[b * k + j]).ToArray();
        if (step.Trace is { } trace)
            for (int b = 0; b < chosen.Length; b++)
                trace(new StepTrace(b, step.Index, ids.AsSpan(b * k, k).ToArray(), scores[b], chosen[b]));
        scorer.Append(tokens);
        return tokens;
    }

    /// <summary>The step's scorer as a vocabulary scorer, or an error saying which reward model the method needs.</summary>
    internal static IVocabularyScorer VocabularyScorerOf(TokenwiseStep step, DecodingMethod method)
        => step.Scorer as IVocabularyScorer
           ?? throw new PargsException($"{method.Name} reads the reward model's head over the whole vocabulary: give a reward model trained with `pargs train-rm --objective {method.GuideObjective?.ToConfigValue()}` (a causal LM with \"pargs_objective\": \"{method.GuideObjective?.ToConfigValue()}\"), not one with a scalar score head");
}

/// <summary>Whole-vocabulary rows on the host: log p + w·values, and a top-k selection.</summary>
static class VocabularyRows
{
    /// <summary>[B][V] of logProbs + (float)w · values, in float32 as torch would compute it.</summary>
    public static float[][] Combine(TorchSharp.torch.Tensor logProbs, TorchSharp.torch.Tensor values, double w, DecodingMethod method)
    {
        if (!float.IsFinite((float)w)) throw new PargsException($"-w {w} overflowed float32 (whose largest value is {float.MaxValue:G3}), where scores are computed; use a smaller -w");
        if (!logProbs.shape.SequenceEqual(values.shape))
            throw new PargsException($"{method.Name}: the language model gives {logProbs.shape[^1]} token scores per row and the reward model {values.shape[^1]}; they must share the vocabulary");
        int rows = (int)logProbs.shape[0], vocab = (int)logProbs.shape[1];
        using var lp = logProbs.contiguous();
        using var rv = values.contiguous();
        // Read in place through the storage's span: TorchSharp's element accessor costs ~100 ns a read, and its ToArray
        // still walks the elements one by one — at 2 × 32,000 reads per row and step that was most of FaRMA's time
        // on a 32k vocabulary.
        if (lp.dtype != TorchSharp.torch.ScalarType.Float32 || rv.dtype != TorchSharp.torch.ScalarType.Float32)
            throw new InvalidOperationException("log-probabilities and reward values are float32");
        var a = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(lp.bytes);
        var r = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(rv.bytes);
        float wf = (float)w;
        var combined = new float[rows][];
        for (int b = 0; b < rows; b++)
        {
            var row = combined[b] = new float[vocab];
            for (int v = 0; v < vocab; v++) row[v] = a[b * vocab + v] + wf * r[b * vocab + v];
        }
        return combined;
    }

    /// <summary>The ids of the k largest entries, largest first; ties go to the smaller id. NaN counts as largest (it is then refused).</summary>
    public static int[] TopK(float[] row, int k)
    {
        var top = new int[k];
        int count = 0;
        for (int v = 0; v < row.Length; v++)
        {
            if (count == k && !Greater(row[v], row[top[k - 1]])) continue;
            int at = count < k ? count++ : k - 1;
            while (at > 0 && Greater(row[v], row[top[at - 1]])) { top[at] = top[at - 1]; at--; }
            top[at] = v;
        }
        return top;
    }

    static bool Greater(float x, float y) => float.IsNaN(x) ? !float.IsNaN(y) : x > y;
}
