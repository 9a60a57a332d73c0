using Pargs.Weights;

namespace Pargs.Tests.Weights;

/// <summary>
/// The reference every stored-precision product is checked against: a double loop over the dequantized weights and the
/// activation as the product sees it (rounded through the format's activation format — Q8_0 for the integer formats),
/// each output within a relative tolerance of Σ|w·x| (same math, another summation order).
/// </summary>
static unsafe class StoredProductReference
{
    /// <summary>Activation rows of <paramref name="cols"/> values as the product of <paramref name="format"/> sees them.</summary>
    public static float[] AsSeen(WeightFormat format, ReadOnlySpan<float> x, int cols)
    {
        var seen = x.ToArray();
        if (WeightCodec.ActivationFormat(format) is not { } activation) return seen;
        var stored = new byte[WeightFormats.ByteCount(activation, cols, "x")];
        for (int r = 0; r < x.Length / cols; r++)
        {
            WeightCodec.Encode(activation, x.Slice(r * cols, cols), stored);
            WeightCodec.Decode(activation, stored, seen.AsSpan(r * cols, cols));
        }
        return seen;
    }

    /// <summary>
    /// <paramref name="n"/> random activation rows through <c>matrix.MatMul</c> (<c>MatVec</c> when
    /// <paramref name="matVec"/>, one row), every output against the reference.
    /// </summary>
    public static void Check(WeightMatrix matrix, int n, Random random, double tolerance = 1e-4, bool matVec = false, string context = "")
    {
        int rows = matrix.Rows, cols = matrix.Cols;
        var w = matrix.Dequantize();
        var x = QuantizedDotTests.RandomRow(random, n * cols, 60);
        var xSeen = AsSeen(matrix.Format, x, cols);
        var y = new float[n * rows];
        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            if (matVec) matrix.MatVec(xp, yp);
            else matrix.MatMul(xp, n, yp);
        }
        for (int r = 0; r < n; r++)
            for (int o = 0; o < rows; o++)
            {
                double want = 0, scale = 0;
                for (int i = 0; i < cols; i++)
                {
                    double product = (double)w[(long)o * cols + i] * xSeen[r * cols + i];
                    want += product;
                    scale += Math.Abs(product);
                }
                float got = y[r * rows + o];
                Assert.True(Math.Abs(got - want) <= tolerance * scale + 1e-30,
                    $"{matrix.Format} [{rows} × {cols}] × {n} rows{context}, row {r} output {o}: got {got:R}, reference {want:R} (Σ|w·x| {scale:E3})");
            }
    }
}
