using System.Runtime.Intrinsics;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// The small steps every method is composed of, in the order data flows through a decoding step
/// (vLLM-sampler style): LM logits → log-softmax → top-k → [reward of each candidate] → combine →
/// temperature → sample | argmax. Steps up to top-k work on tensors [B, …]; from there on a row is k numbers,
/// handled on the host per row, with the row's own random stream for the choice, so a row's output does not
/// depend on which rows share its batch.
/// </summary>
public static class DecodingSteps
{
    /// <summary>log π(v | x, y&lt;t) for every token v: [B, V].</summary>
    public static Tensor LogSoftmax(Tensor logits) => logits.log_softmax(-1);

    /// <summary>The k most likely tokens per row, most likely first: (log-probs [B, k], ids [B, k]).</summary>
    public static (Tensor LogProbs, Tensor Ids) TopK(Tensor logProbs, int k)
    {
        var (values, indices) = logProbs.topk(k, dim: -1, largest: true, sorted: true);
        return (values, indices);
    }

    /// <summary>
    /// score(v) = log π(v) + w · r(x, y&lt;t ∘ v) — the ARGS/PARGS objective — per row [B][k], on the host: for
    /// k = 10 numbers two torch ops cost more than the arithmetic (about 10 µs a step, measured).
    /// </summary>
    public static float[][] Combine(float[][] logProbs, float[][] rewards, double w)
    {
        if (logProbs.Length != rewards.Length) throw new ArgumentException($"{logProbs.Length} rows of log-probabilities but {rewards.Length} of rewards");
        if (!float.IsFinite((float)w)) throw new PargsException($"-w {w} overflowed float32 (whose largest value is {float.MaxValue:G3}), where scores are computed; use a smaller -w");
        var scores = new float[logProbs.Length][];
        for (int b = 0; b < logProbs.Length; b++)
        {
            if (logProbs[b].Length != rewards[b].Length) throw new ArgumentException($"row {b}: {logProbs[b].Length} candidates but {rewards[b].Length} rewards");
            scores[b] = new float[logProbs[b].Length];
            // In float32, as torch's logProbs + w * rewards computed it: the same bits, so seeded runs are unchanged.
            for (int j = 0; j < scores[b].Length; j++)
            {
                float weighted = (float)w * rewards[b][j];
                scores[b][j] = logProbs[b][j] + weighted;
                // −inf is a token of probability 0, but only from the LM: a w·r that overflowed to ±inf is garbage.
                if ((!float.IsFinite(scores[b][j]) && !float.IsNegativeInfinity(scores[b][j])) || !float.IsFinite(weighted))
                    throw new PargsException(NonFiniteScore(scores[b][j], logProbs[b][j], rewards[b][j], w));
            }
        }
        return scores;
    }

    /// <summary>
    /// Picks one column per row from <paramref name="scores"/> [B][k]: the argmax (first on ties, i.e. the
    /// most likely LM token, since candidates arrive sorted), or a draw from softmax(score / temperature).
    /// </summary>
    public static int[] Choose(float[][] scores, bool sample, double temperature, Random[] rowRandom)
    {
        var chosen = new int[scores.Length];
        for (int b = 0; b < scores.Length; b++)
        {
            var row = scores[b];
            // Guided scores were checked by Combine, with the reward's share; what is left comes from the LM.
            foreach (var s in row)
                if (!float.IsFinite(s) && !float.IsNegativeInfinity(s)) throw new PargsException(NonFiniteLogProb(s));
            chosen[b] = sample ? SampleSoftmax(row, temperature, rowRandom[b]) : ArgMax(row);
        }
        return chosen;
    }

    /// <summary>Which of the score's parts made it NaN or +inf: the reward, the LM's log-probability, or w·r's size.</summary>
    static string NonFiniteScore(float score, float logProb, float reward, double w)
    {
        if (!float.IsFinite(reward)) return $"the reward model gave a candidate the reward {reward}: check its weights and config";
        if (float.IsNaN(logProb) || float.IsPositiveInfinity(logProb)) return NonFiniteLogProb(logProb);
        return $"log p + w·r is {score} for a candidate: w·r overflowed float32 (w = {w}, r = {reward}); use a smaller -w";
    }

    static string NonFiniteLogProb(float value)
        => $"the language model gave a candidate the log-probability {value}: its logits are not finite; check its weights and config";

    /// <summary>The argmax of every row (<see cref="Choose"/> without sampling).</summary>
    public static int[] ArgMaxes(float[][] scores) => Choose(scores, sample: false, 1.0, []);

    public static int ArgMax(float[] row)
    {
        int best = 0;
        for (int j = 1; j < row.Length; j++)
            if (row[j] > row[best]) best = j;
        return best;
    }

    /// <summary>One draw from softmax(row / temperature), computed in double precision.</summary>
    public static int SampleSoftmax(float[] row, double temperature, Random random) => SampleSoftmax(row, temperature, random, new double[row.Length]);

    /// <summary>
    /// <see cref="SampleSoftmax(float[], double, Random)"/> with the caller's scratch for the weights (at least as long as
    /// the row): over a whole 32k vocabulary (GenARM) a new one was 256 KB of large-object heap a step.
    /// </summary>
    public static int SampleSoftmax(float[] row, double temperature, Random random, double[] weights)
    {
        if (weights.Length < row.Length) throw new ArgumentException($"{weights.Length} weights for a row of {row.Length}", nameof(weights));
        if (!float.IsFinite(row.Max()))
            throw new PargsException("no candidate has a finite score (every one has probability 0), so none can be sampled");
        double max = row.Max() / temperature;
        double total = 0;
        for (int j = 0; j < row.Length; j++)
        {
            weights[j] = Math.Exp(row[j] / temperature - max);
            total += weights[j];
        }
        if (!double.IsFinite(total) || total <= 0)
        {
            // A temperature so small that score / temperature overflows: the same distribution, computed as
            // exp((s − max) / T), which cannot overflow (the usual form is kept otherwise: seeded runs stay bit-identical).
            double top = row.Max();
            total = 0;
            for (int j = 0; j < row.Length; j++)
            {
                weights[j] = Math.Exp((row[j] - top) / temperature);
                total += weights[j];
            }
        }
        double u = random.NextDouble() * total;
        for (int j = 0; j < row.Length; j++)
        {
            u -= weights[j];
            if (u < 0) return j;
        }
        return row.Length - 1;
    }

    /// <summary>
    /// Nucleus candidates: per row, the most likely tokens until their probability reaches
    /// <paramref name="p"/> (at least one). Returns (log-probs, ids) per row, most likely first.
    /// </summary>
    public static (float[][] LogProbs, long[][] Ids) TopP(Tensor logProbs, double p)
    {
        using var scope = NewDisposeScope();
        long rows = logProbs.shape[0], vocab = logProbs.shape[1];
        return TopP(TensorMemory.FloatSpan(logProbs.contiguous()), (int)rows, (int)vocab, p); // read in place, sorted on the host
    }

    /// <summary><see cref="TopP(Tensor, double)"/> of host log-probabilities [rows, vocab] (row-major).</summary>
    public static (float[][] LogProbs, long[][] Ids) TopP(ReadOnlySpan<float> values, int rows, int vocab, double p)
    {
        var order = new int[vocab];
        var outLogp = new float[rows][];
        var outIds = new long[rows][];
        for (int b = 0; b < rows; b++)
        {
            var row = values.Slice(b * vocab, vocab);
            DescendingOrder.Sort(row, order);
            double mass = 0;
            int n = 0;
            while (n < vocab && (n == 0 || mass < p))
            {
                mass += Math.Exp(row[order[n]]);
                n++;
            }
            outLogp[b] = new float[n];
            outIds[b] = new long[n];
            for (int j = 0; j < n; j++)
            {
                outLogp[b][j] = row[order[j]];
                outIds[b][j] = order[j];
            }
        }
        return (outLogp, outIds);
    }

    /// <summary>
    /// log_softmax of every row of <paramref name="logits"/> [rows, vocab] in place, on the host (the host engine's
    /// <see cref="LogSoftmax(Tensor)"/>): x − max − log Σ exp(x − max), the form torch computes, the exps vectorized in
    /// float32 as torch's, the sum in double (torch sums in float32).
    /// Within 1e-6 of torch's float32 result (tested).
    /// </summary>
    public static void LogSoftmaxInPlace(Span<float> logits, int rows, int vocab)
    {
        for (int b = 0; b < rows; b++)
        {
            var row = logits.Slice(b * vocab, vocab);
            float max = MaxOf(row);
            float logSum = (float)Math.Log(SumOfExp(row, max));
            for (int v = 0; v < vocab; v++) row[v] = row[v] - max - logSum;
        }
    }

    /// <summary>The largest value of <paramref name="row"/> (NaN if any is NaN, as in torch).</summary>
    static float MaxOf(ReadOnlySpan<float> row)
    {
        float max = float.NegativeInfinity;
        bool nan = false;
        int i = 0;
        if (Vector256.IsHardwareAccelerated && row.Length >= Vector256<float>.Count)
        {
            var best = Vector256.Create(float.NegativeInfinity);
            var anyNan = Vector256<float>.Zero;
            for (; i <= row.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var x = Vector256.Create(row.Slice(i, Vector256<float>.Count));
                best = Vector256.Max(best, x);
                anyNan |= ~Vector256.Equals(x, x);
            }
            nan = anyNan != Vector256<float>.Zero;
            for (int j = 0; j < Vector256<float>.Count; j++) max = Math.Max(max, best[j]);
        }
        for (; i < row.Length; i++)
        {
            nan |= float.IsNaN(row[i]);
            max = Math.Max(max, row[i]);
        }
        return nan ? float.NaN : max;
    }

    /// <summary>Σ exp(x − max) over <paramref name="row"/>: each exp in float32 (as torch's vectorized kernel), the sum in double.</summary>
    static double SumOfExp(ReadOnlySpan<float> row, float max)
    {
        double sum = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated && row.Length >= Vector256<float>.Count)
        {
            var shift = Vector256.Create(max);
            Vector256<double> low = Vector256<double>.Zero, high = Vector256<double>.Zero;
            for (; i <= row.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var e = Vector256.Exp(Vector256.Create(row.Slice(i, Vector256<float>.Count)) - shift);
                var (a, b) = Vector256.Widen(e);
                low += a;
                high += b;
            }
            sum = Vector256.Sum(low + high);
        }
        for (; i < row.Length; i++) sum += MathF.Exp(row[i] - max);
        return sum;
    }

    /// <summary>
    /// The k largest of every row of <paramref name="values"/> [rows, vocab] (row-major), largest first, into
    /// <paramref name="topValues"/> / <paramref name="topIds"/> [rows · k]: the host <see cref="TopK(Tensor, int)"/>. Ties
    /// keep the lower id first; NaN counts as the largest, as in torch's topk.
    /// </summary>
    public static void TopK(ReadOnlySpan<float> values, int rows, int vocab, int k, Span<float> topValues, Span<long> topIds)
    {
        if (k < 1 || k > vocab) throw new ArgumentOutOfRangeException(nameof(k), $"k = {k} for a vocabulary of {vocab}");
        static bool Above(float a, float b) => a > b || (float.IsNaN(a) && !float.IsNaN(b));
        int[]? order = k > 64 ? new int[vocab] : null;
        for (int r = 0; r < rows; r++)
        {
            var row = values.Slice(r * vocab, vocab);
            var outValues = topValues.Slice(r * k, k);
            var outIds = topIds.Slice(r * k, k);
            if (order is not null)
            {
                DescendingOrder.Sort(row, order); // stable: ties in ascending id order
                for (int j = 0; j < k; j++) (outValues[j], outIds[j]) = (row[order[j]], order[j]);
                continue;
            }
            // Insertion into a sorted list of k: a token displaces only strictly smaller ones, so ties keep the lower id.
            int filled = 0;
            for (int v = 0; v < vocab; v++)
            {
                // Once the list is full, eight tokens at a time that are all ≤ its last value are skipped at once: none of them
                // would enter (x ≤ last means not Above, NaN never compares ≤), and almost every token of a row is such.
                if (filled == k && (v & 7) == 0 && v + 8 <= vocab
                    && Vector256.LessThanOrEqualAll(Vector256.Create(row.Slice(v, 8)), Vector256.Create(outValues[k - 1])))
                {
                    v += 7;
                    continue;
                }
                float x = row[v];
                if (filled == k && !Above(x, outValues[k - 1])) continue;
                int at = filled < k ? filled++ : k - 1;
                while (at > 0 && Above(x, outValues[at - 1]))
                {
                    outValues[at] = outValues[at - 1];
                    outIds[at] = outIds[at - 1];
                    at--;
                }
                outValues[at] = x;
                outIds[at] = v;
            }
        }
    }

    /// <summary>[B, k] float tensor → jagged CPU array.</summary>
    public static float[][] ToRows(Tensor scores)
    {
        var flat = scores.contiguous().data<float>().ToArray();
        int rows = (int)scores.shape[0], k = (int)scores.shape[1];
        return Enumerable.Range(0, rows).Select(b => flat.AsSpan(b * k, k).ToArray()).ToArray();
    }

    /// <summary>
    /// The random stream of one output row: a function of the run's seed, the prompt's index and the
    /// sample's index only, so results are reproducible and independent of batching.
    /// </summary>
    public static Random RowRandom(int seed, int promptIndex, int sampleIndex = 0)
    {
        // SplitMix64 over the three numbers (HashCode.Combine is randomised per process, so unusable here).
        ulong x = (ulong)(uint)seed;
        foreach (var part in new[] { (ulong)(uint)promptIndex, (ulong)(uint)sampleIndex })
        {
            x += 0x9E3779B97F4A7C15UL ^ part;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
            x ^= x >> 31;
        }
        return new Random((int)(x & 0x7FFFFFFF));
    }
}
