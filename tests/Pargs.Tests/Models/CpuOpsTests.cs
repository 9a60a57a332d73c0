using System.Runtime.Intrinsics;
using Pargs.Models.Cpu;

namespace Pargs.Tests.Models;

/// <summary>The vector loops of the CPU kernels against plain double-precision reference code.</summary>
public unsafe class CpuOpsTests
{
    [Fact]
    public void Vector_exp_matches_Math_Exp_and_underflows_to_exact_zero()
    {
        var random = new Random(4);
        double worst = 0;
        for (int i = 0; i < 20_000; i++)
        {
            float x = (float)(random.NextDouble() * 170 - 86);
            double want = Math.Exp(x);
            worst = Math.Max(worst, Math.Abs(CpuOps.Exp(Vector256.Create(x)).GetElement(0) - want) / want);
        }
        Assert.True(worst < 1e-6, $"worst relative error {worst:E2}");
        Assert.Equal(0f, CpuOps.Exp(Vector256.Create(float.NegativeInfinity)).GetElement(0));
        Assert.Equal(0f, CpuOps.Exp(Vector256.Create(-100f)).GetElement(0));
        Assert.Equal(1f, CpuOps.Exp(Vector256<float>.Zero).GetElement(0));
    }

    [Theory]
    [InlineData(1, 8, 5)]     // one query (a decoding step), fewer slots than a vector
    [InlineData(6, 8, 37)]    // siblings with D = 8: the slot-block path, with a tail
    [InlineData(10, 48, 83)]  // stories15M heads: the matrix-product path
    [InlineData(4, 12, 19)]   // a head size that is not a multiple of 8
    [InlineData(20, 8, 266)]  // ten siblings × two query heads per kv head (stories260K at prompt 256)
    [InlineData(5, 16, 21)]   // slot blocks with two 8-dim chunks
    [InlineData(4, 8, 3)]     // slot blocks: a single, partial block
    public void Attend_matches_a_reference_softmax_attention_under_a_mask(int queries, int headDim, int slots)
    {
        var random = new Random(queries * 100 + headDim);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] q = Random(queries * headDim), keys = Random(slots * headDim), values = Random(slots * headDim);
        // Query i may not see every third slot (offset by i), nor, as in a causal prefill, the slots after
        // slots − queries + i; it always sees slot 0.
        var mask = new float[queries * slots];
        for (int i = 0; i < queries; i++)
            for (int s = 0; s < slots; s++)
                mask[i * slots + s] = s > 0 && ((s + i) % 3 == 0 || s > slots - queries + i) ? float.NegativeInfinity : 0f;
        var output = new float[queries * headDim];
        var scores = new float[CpuOps.AttendScratchFloats(queries, slots, headDim)];
        fixed (float* qp = q, kp = keys, vp = values, mp = mask, op = output, sp = scores)
        {
            var masks = stackalloc float*[queries];
            var outputs = stackalloc float*[queries];
            for (int i = 0; i < queries; i++) { masks[i] = mp + i * slots; outputs[i] = op + i * headDim; }
            CpuOps.Attend(qp, queries, kp, vp, masks, slots, headDim, sp, outputs);
        }
        for (int i = 0; i < queries; i++)
        {
            AssertAttendsInDouble(output, q, keys, values, headDim, slots, i, s => !float.IsNegativeInfinity(mask[i * slots + s]));
        }
    }

    [Theory]
    [InlineData(20, 8, 58)]  // stories260K: ten sibling candidates × two query heads per kv head over a 48-token prefix
    [InlineData(7, 8, 9)]    // an odd count: the last query alone; two blocks, the last partial
    [InlineData(6, 16, 30)]  // D = 16 takes the single-query path whatever the sharing
    public void Attend_gives_queries_sharing_a_mask_row_the_bits_of_queries_with_their_own_copy(int queries, int headDim, int slots)
    {
        // Queries 2m and 2m + 1 are one candidate's two query heads: one mask row, the prefix plus their own slot among
        // the siblings' (slots − queries/2 onward). The shared-row path must give what separate copies of the row give.
        var random = new Random(queries * 31 + slots);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        float[] q = Random(queries * headDim), keys = Random(slots * headDim), values = Random(slots * headDim);
        int candidates = (queries + 1) / 2, prefix = slots - candidates;
        var rows = new float[candidates * slots];
        for (int c = 0; c < candidates; c++)
            for (int s = 0; s < slots; s++) rows[c * slots + s] = s < prefix || s == prefix + c ? 0f : float.NegativeInfinity;
        var copies = new float[queries * slots];
        for (int i = 0; i < queries; i++) Array.Copy(rows, i / 2 * slots, copies, i * slots, slots);
        float[] Run(float[] maskData, Func<int, int> rowOf)
        {
            var output = new float[queries * headDim];
            var scratch = new float[CpuOps.AttendScratchFloats(queries, slots, headDim)];
            fixed (float* qp = q, kp = keys, vp = values, mp = maskData, op = output, sp = scratch)
            {
                var masks = stackalloc float*[queries];
                var outputs = stackalloc float*[queries];
                for (int i = 0; i < queries; i++) { masks[i] = mp + rowOf(i) * slots; outputs[i] = op + i * headDim; }
                CpuOps.Attend(qp, queries, kp, vp, masks, slots, headDim, sp, outputs);
            }
            return output;
        }
        var shared = Run(rows, i => i / 2);
        var separate = Run(copies, i => i);
        for (int i = 0; i < queries * headDim; i++)
            Assert.True(BitConverter.SingleToInt32Bits(shared[i]) == BitConverter.SingleToInt32Bits(separate[i]), $"query {i / headDim}, dim {i % headDim}: {shared[i]:R} vs {separate[i]:R}");
        for (int i = 0; i < queries; i++) // and both are the attention: a double-precision reference
        {
            int c = i / 2;
            AssertAttendsInDouble(shared, q, keys, values, headDim, slots, i, s => s < prefix || s == prefix + c);
        }
    }

    [Theory]
    [InlineData(8)]   // stories260K: half 4, one 4-lane step
    [InlineData(12)]  // half 6: a 4-lane step and a scalar tail
    [InlineData(64)]  // half 32: 8-lane steps
    [InlineData(48)]  // half 24: 8-lane steps
    public void Rotary_gives_the_bits_of_x_cos_plus_rolled_x_signed_sin(int headDim)
    {
        var random = new Random(headDim);
        float[] Random() => Enumerable.Range(0, headDim).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        float[] x = Random(), cos = Random(), sin = Random();
        var want = new float[headDim];
        int half = headDim / 2;
        for (int i = 0; i < headDim; i++)
        {
            // torch's x·cos + rotate_half(x)·sin with the sign folded into the table: two products, one sum, each rounded.
            float product = x[i] * cos[i], rolled = x[(i + half) % headDim] * sin[i];
            want[i] = product + rolled;
        }
        fixed (float* xp = x, cp = cos, sp = sin) CpuOps.Rotary(xp, cp, sp, headDim);
        for (int i = 0; i < headDim; i++)
            Assert.True(BitConverter.SingleToInt32Bits(x[i]) == BitConverter.SingleToInt32Bits(want[i]), $"element {i}: {x[i]:R} vs {want[i]:R}");
    }

    [Fact]
    public void MatMul_matches_a_reference_product_for_every_row_count()
    {
        var random = new Random(9);
        const int inF = 37, outF = 70;
        var w = Enumerable.Range(0, outF * inF).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var bias = Enumerable.Range(0, outF).Select(_ => (float)random.NextDouble()).ToArray();
        foreach (int rows in new[] { 1, 2, 3, 4, 5, 7, 10 }) // every mix of 3-row and 2-row blocks and a last single row
        {
            var x = Enumerable.Range(0, rows * inF).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
            var y = new float[rows * outF];
            fixed (float* xp = x, wp = w, bp = bias, yp = y)
                CpuOps.MatMul(xp, rows, inF, wp, bp, yp, outF, 0, outF);
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < outF; o++)
                {
                    double want = bias[o];
                    for (int i = 0; i < inF; i++) want += x[r * inF + i] * w[o * inF + i];
                    Assert.True(Math.Abs(y[r * outF + o] - want) < 1e-5, $"rows {rows}: y[{r}, {o}] = {y[r * outF + o]}, want {want}");
                }
        }
    }

    /// <summary>Query <paramref name="i"/>'s output against softmax attention in double precision over the slots <paramref name="sees"/> allows.</summary>
    static void AssertAttendsInDouble(float[] output, float[] q, float[] keys, float[] values, int headDim, int slots, int i, Func<int, bool> sees)
    {
        var weights = new double[slots];
        for (int s = 0; s < slots; s++)
        {
            if (!sees(s)) continue;
            double dot = 0;
            for (int d = 0; d < headDim; d++) dot += q[i * headDim + d] * keys[s * headDim + d];
            weights[s] = Math.Exp(dot / Math.Sqrt(headDim));
        }
        double total = weights.Sum();
        for (int d = 0; d < headDim; d++)
        {
            double want = 0;
            for (int s = 0; s < slots; s++) want += weights[s] / total * values[s * headDim + d];
            Assert.True(Math.Abs(output[i * headDim + d] - want) < 1e-5, $"query {i}, dim {d}: {output[i * headDim + d]} vs {want}");
        }
    }
}
