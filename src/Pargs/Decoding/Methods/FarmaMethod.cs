using System.Runtime.Intrinsics;
using Pargs.Rewards;
using Pargs.Engine;
using Pargs.Models.Cpu;
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
///   (s_k, v_k) = TopK(s, k)                  top-k after combining (fused with the sum: s is never stored)
///   j = Sample(softmax(s_k / T)) | ArgMax(s_k) per row, with the row's own seeded stream
///   scorer.Append(v_j)                       the reward model's prefix grows by the chosen token
/// </code>
/// log p is the LM's log-softmax: it differs from the LM's logits by a per-row constant, which changes neither
/// the top-k nor the softmax over it.
/// </summary>
sealed class VocabularyTopKRule(DecodingMethod method, int k, double w, bool sample, double temperature) : TokenRule
{
    int[] top = []; // [B·k] of the step, reused: a step allocates nothing of the vocabulary's size

    public override long[] Choose(TokenwiseStep step)
    {
        var scorer = VocabularyScorerOf(step, method);
        // On the host: log p + w·r summed and selected in one pass over each row, read in place — for one row of V
        // floats that costs less than the torch ops (and their [B, V] tensors) would, measured on stories260K, where a
        // whole step is a fraction of a millisecond, and on a 32k vocabulary, where a [B][V] copy per step was a large
        // object for the garbage collector.
        using var rows = VocabularyRows.Read(step.Next.LogProbs, scorer.Values, w, method);
        if (top.Length != rows.Count * k) top = new int[rows.Count * k];
        var scores = new float[rows.Count][];
        for (int b = 0; b < rows.Count; b++) scores[b] = new float[k];
        rows.CombinedTopK(k, top, scores);
        for (int b = 0; b < rows.Count; b++)
            if (step.Active[b])
                foreach (var s in scores[b])
                    if (!float.IsFinite(s) && !float.IsNegativeInfinity(s))
                        throw new PargsException($"log p + w·r is {s} for a candidate of {method.Name}: the reward model's head (or w·r = {w}·r) is not finite; check its weights and -w");
        var chosen = DecodingSteps.Choose(scores, sample, temperature, step.RowRandom);
        var tokens = new long[rows.Count];
        for (int b = 0; b < rows.Count; b++) tokens[b] = top[b * k + chosen[b]];
        if (step.Trace is { } trace)
            for (int b = 0; b < chosen.Length; b++)
                trace(new StepTrace(b, step.Index, CandidateIds(b), scores[b], chosen[b]));
        scorer.Append(tokens);
        return tokens;
    }

    long[] CandidateIds(int row)
    {
        var ids = new long[k];
        for (int j = 0; j < k; j++) ids[j] = top[row * k + j];
        return ids;
    }

    /// <summary>The step's scorer as a vocabulary scorer, or an error saying which reward model the method needs.</summary>
    internal static IVocabularyScorer VocabularyScorerOf(TokenwiseStep step, DecodingMethod method)
        => step.Scorer as IVocabularyScorer
           ?? throw new PargsException($"{method.Name} reads the reward model's head over the whole vocabulary: give a reward model trained with `pargs train-rm --objective {method.GuideObjective?.ToConfigValue()}` (a causal LM with \"pargs_objective\": \"{method.GuideObjective?.ToConfigValue()}\"), not one with a scalar score head");
}

/// <summary>
/// Whole-vocabulary rows on the host, read in place: log p [B, V] and the reward head's values [B, V], combined as
/// log p + (float)w · values (float32, as torch would compute it) — all of it, or only its top-k.
/// </summary>
/// <remarks>
/// The rows are read through their storage: TorchSharp's element accessor costs ~100 ns a read, and its ToArray
/// still walks the elements one by one — at 2 × 32,000 reads per row and step that was most of FaRMA's time on a
/// 32k vocabulary. Each TorchSharp property is itself a native call or a few (about a microsecond each on this VM,
/// more when a model's step has just evicted libtorch's code from the cache), so each tensor's shape and layout are
/// read once: an in-place view costs five calls a tensor, where a contiguous() view, a second shape and a dtype cost
/// nine — a tenth of FaRMA's work besides the two models on stories260K.
/// </remarks>
sealed unsafe class VocabularyRows : IDisposable
{
    readonly float* logProbs, values;
    readonly Tensor? logProbsCopy, valuesCopy; // only when a tensor was not contiguous float32 already
    readonly float w;

    public int Count { get; }
    public int Vocab { get; }

    VocabularyRows(Tensor logProbs, Tensor values, float w, int rows, int vocab)
    {
        this.w = w;
        Count = rows;
        Vocab = vocab;
        this.logProbs = InPlace(logProbs, out logProbsCopy);
        this.values = InPlace(values, out valuesCopy);
    }

    /// <summary>Checks the two [B, V] rows and reads them in place (through a contiguous float32 copy when they are not one).</summary>
    public static VocabularyRows Read(Tensor logProbs, Tensor values, double w, DecodingMethod method)
    {
        if (!float.IsFinite((float)w)) throw new PargsException($"-w {w} overflowed float32 (whose largest value is {float.MaxValue:G3}), where scores are computed; use a smaller -w");
        long[] lpShape = logProbs.shape, valuesShape = values.shape;
        if (lpShape.Length != 2 || !lpShape.SequenceEqual(valuesShape))
            throw new PargsException($"{method.Name}: the language model gives {lpShape[^1]} token scores per row and the reward model {valuesShape[^1]}; they must share the vocabulary");
        return new VocabularyRows(logProbs, values, (float)w, checked((int)lpShape[0]), checked((int)lpShape[1]));
    }

    static float* InPlace(Tensor t, out Tensor? copy)
    {
        copy = null;
        var p = TensorMemory.Floats(t);
        if (p != null) return p;
        if (t.dtype != ScalarType.Float32) throw new InvalidOperationException("log-probabilities and reward values are float32");
        copy = t.contiguous();
        return TensorMemory.Floats(copy);
    }

    public void Dispose()
    {
        logProbsCopy?.Dispose();
        valuesCopy?.Dispose();
    }

    /// <summary>[B][V] of log p + (float)w · values, into <paramref name="into"/>'s rows (reused: [V] of a 32k vocabulary is a large object).</summary>
    public void Combine(float[][] into)
    {
        for (int b = 0; b < Count; b++)
        {
            var row = into[b];
            if (row.Length != Vocab) throw new ArgumentException($"a row of {row.Length} for a vocabulary of {Vocab}", nameof(into));
            float* a = logProbs + (long)b * Vocab, r = values + (long)b * Vocab;
            for (int v = 0; v < Vocab; v++) row[v] = a[v] + w * r[v];
        }
    }

    /// <summary>
    /// Per row b, the k largest of log p + (float)w · values (the same float32 sums as <see cref="Combine"/>) into
    /// <paramref name="top"/>[b·k ..] (ids) and <paramref name="scores"/>[b] (their sums), largest first; ties go to the
    /// smaller id; NaN counts as largest (it is then refused). One pass, nothing of the vocabulary's size allocated.
    /// </summary>
    public void CombinedTopK(int k, int[] top, float[][] scores)
    {
        int vocab = Vocab;
        float wf = w;
        for (int b = 0; b < Count; b++)
        {
            var best = scores[b];
            float* rowA = logProbs + (long)b * vocab, rowR = values + (long)b * vocab;
            int count = 0, v = 0;
            for (; v < vocab && count < k; v++) Offer(top, b * k, best, k, ref count, v, rowA[v] + wf * rowR[v]);
            // Once k are held, most tokens fall below the k-th: a vector of them is skipped with one compare. The sums
            // are the scalar ones (a multiply and an add per lane, no fused multiply-add); a lane above the k-th, or
            // NaN (which counts as largest), goes through the same scalar insertion, in id order.
            if (Vector256.IsHardwareAccelerated)
            {
                var wv = Vector256.Create(wf);
                for (; v + Vector256<float>.Count <= vocab; v += Vector256<float>.Count)
                {
                    var sums = Vector256.Add(Vector256.Load(rowA + v), Vector256.Multiply(wv, Vector256.Load(rowR + v)));
                    var above = Vector256.GreaterThan(sums, Vector256.Create(best[k - 1])) | ~Vector256.Equals(sums, sums);
                    if (above == Vector256<float>.Zero) continue;
                    for (int lane = 0; lane < Vector256<float>.Count; lane++) Offer(top, b * k, best, k, ref count, v + lane, sums.GetElement(lane));
                }
            }
            for (; v < vocab; v++) Offer(top, b * k, best, k, ref count, v, rowA[v] + wf * rowR[v]);
        }
    }

    /// <summary>Inserts (id, s) into the row's top list (ids at top[offset..], sums in best) if it beats the k-th; ids arrive in increasing order, so a tie keeps the smaller id.</summary>
    static void Offer(int[] top, int offset, float[] best, int k, ref int count, int id, float s)
    {
        if (count == k && !Greater(s, best[k - 1])) return;
        int at = count < k ? count++ : k - 1;
        while (at > 0 && Greater(s, best[at - 1])) { top[offset + at] = top[offset + at - 1]; best[at] = best[at - 1]; at--; }
        top[offset + at] = id;
        best[at] = s;
    }

    static bool Greater(float x, float y) => float.IsNaN(x) ? !float.IsNaN(y) : x > y;
}
