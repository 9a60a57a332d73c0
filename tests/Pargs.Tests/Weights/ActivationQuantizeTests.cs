using Pargs.Weights;

namespace Pargs.Tests.Weights;

/// <summary>
/// <see cref="Q8_0.QuantizeRow"/> (the vectorized activation quantizer of every Q8_0 / Q4_0 product) byte for byte
/// against <see cref="Q8_0.Quantize"/> (ggml's quantize_row_q8_0_ref, golden-tested): random rows, exact ties of the
/// rounding (x·id landing on k + ½), all-zero blocks, subnormals, and blocks holding NaN or ±inf.
/// </summary>
public unsafe class ActivationQuantizeTests
{
    [Fact]
    public void The_vectorized_quantizer_writes_the_reference_bytes()
    {
        var random = new Random(17);
        const int blocks = 64;
        var x = new float[blocks * 32];
        for (int b = 0; b < blocks; b++)
            for (int j = 0; j < 32; j++)
            {
                int i = b * 32 + j;
                x[i] = (b % 8) switch
                {
                    0 => 0f, // an all-zero block: d = 0
                    1 => (float)(random.NextDouble() * 2 - 1) * 1e-40f, // subnormal inputs
                    // Ties: amax = 127 makes id = 1 exactly, so k + ½ must round away from zero.
                    2 => j == 0 ? 127f : (random.Next(-126, 126) + 0.5f),
                    3 => j == 5 ? float.NaN : (float)random.NextDouble(),
                    4 => j == 9 ? float.PositiveInfinity : j == 10 ? float.NegativeInfinity : (float)random.NextDouble(),
                    _ => (float)(BlockFormatTests.Normal(random) * Math.Pow(10, random.Next(-3, 3))),
                };
            }
        var want = new byte[blocks * Q8_0.BlockBytes];
        var got = new byte[blocks * Q8_0.BlockBytes];
        Q8_0.Quantize(x, want);
        fixed (float* xp = x)
        fixed (byte* yp = got)
            Q8_0.QuantizeRow(xp, yp, blocks);
        for (int b = 0; b < blocks; b++)
            Assert.True(want.AsSpan(b * Q8_0.BlockBytes, Q8_0.BlockBytes).SequenceEqual(got.AsSpan(b * Q8_0.BlockBytes, Q8_0.BlockBytes)),
                $"block {b} (kind {b % 8}) differs from the reference quantizer");
    }
}
