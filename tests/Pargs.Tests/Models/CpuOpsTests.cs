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
            var weights = new double[slots];
            for (int s = 0; s < slots; s++)
            {
                if (float.IsNegativeInfinity(mask[i * slots + s])) continue;
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
}
