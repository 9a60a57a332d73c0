using System.Runtime.InteropServices;
using Pargs.Weights;

namespace Pargs.Tests.Weights;

/// <summary>
/// Every dot product — SIMD and scalar — against the double-precision dot product of the dequantized weights
/// and the activation as the product sees it (Q8-rounded for the integer formats, float32 otherwise). Same
/// math in another summation order: the error allowed is 1e-4 of Σ|w·x| (a relative bound on the sum itself
/// would be meaningless where positive and negative terms cancel).
/// </summary>
public unsafe class QuantizedDotTests
{
    const double Tolerance = 1e-4;

    delegate float Dot(byte* w, byte* a, int blocks);

    public static TheoryData<WeightFormat, int> IntegerCases => new()
    {
        { WeightFormat.Q8_0, 32 }, { WeightFormat.Q8_0, 96 }, { WeightFormat.Q8_0, 4864 },
        { WeightFormat.Q4_0, 32 }, { WeightFormat.Q4_0, 96 }, { WeightFormat.Q4_0, 4864 },
        { WeightFormat.Q4_K, 256 }, { WeightFormat.Q4_K, 768 }, { WeightFormat.Q4_K, 4864 },
        { WeightFormat.Q5_K, 256 }, { WeightFormat.Q5_K, 768 }, { WeightFormat.Q5_K, 4864 },
        { WeightFormat.Q6_K, 256 }, { WeightFormat.Q6_K, 768 }, { WeightFormat.Q6_K, 4864 },
    };

    static (Dot Simd, Dot Scalar) Dots(WeightFormat format) => format switch
    {
        WeightFormat.Q8_0 => (Q8_0.Dot, Q8_0.DotScalar),
        WeightFormat.Q4_0 => (Q4_0.Dot, Q4_0.DotScalar),
        WeightFormat.Q4_K => (Q4_K.Dot, Q4_K.DotScalar),
        WeightFormat.Q5_K => (Q5_K.Dot, Q5_K.DotScalar),
        WeightFormat.Q6_K => (Q6_K.Dot, Q6_K.DotScalar),
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    [Theory]
    [MemberData(nameof(IntegerCases))]
    public void Integer_dot_products_match_the_float_dot_of_dequantized_rows(WeightFormat format, int cols)
    {
        var random = new Random(cols * 31 + (int)format);
        var activationFormat = WeightCodec.ActivationFormat(format)!.Value;
        for (int trial = 0; trial < 12; trial++)
        {
            // Trials 0–3 use weights with the golden file's edge blocks (zero, constant, outlier, tiny, one-sided).
            var w = RandomRow(random, cols, trial);
            var x = RandomRow(random, cols, trial % 3 == 0 ? 99 : trial + 100);
            var ws = Encode(format, w);
            var xs = Encode(activationFormat, x);
            var wBack = Decode(format, ws, cols);
            var xBack = Decode(activationFormat, xs, cols);
            double want = 0, scale = 0;
            for (int i = 0; i < cols; i++)
            {
                want += (double)wBack[i] * xBack[i];
                scale += Math.Abs((double)wBack[i] * xBack[i]);
            }
            int blocks = cols / WeightFormats.BlockElements(format);
            var (simd, scalar) = Dots(format);
            fixed (byte* wp = ws)
            fixed (byte* xp = xs)
            {
                foreach (var (name, dot) in new[] { ("simd", simd), ("scalar", scalar) })
                {
                    double got = dot(wp, xp, blocks);
                    Assert.True(Math.Abs(got - want) <= Tolerance * scale + 1e-30,
                        $"{format} {name} cols={cols} trial {trial}: got {got:R}, float reference {want:R} (Σ|w·x| {scale:E3})");
                }
            }
        }
    }

    [Fact]
    public void The_avx2_and_vnni_paths_give_identical_results()
    {
        var random = new Random(21);
        foreach (var format in new[] { WeightFormat.Q8_0, WeightFormat.Q4_0, WeightFormat.Q4_K, WeightFormat.Q6_K })
        {
            var ws = Encode(format, RandomRow(random, 1024, 1));
            var xs = Encode(WeightCodec.ActivationFormat(format)!.Value, RandomRow(random, 1024, 99));
            var (simd, _) = Dots(format);
            bool previous = IntegerDot.VnniEnabled;
            try
            {
                fixed (byte* wp = ws)
                fixed (byte* xp = xs)
                {
                    int blocks = 1024 / WeightFormats.BlockElements(format);
                    IntegerDot.VnniEnabled = true;
                    float withVnni = simd(wp, xp, blocks);
                    IntegerDot.VnniEnabled = false;
                    float withAvx2 = simd(wp, xp, blocks);
                    Assert.Equal(BitConverter.SingleToInt32Bits(withAvx2), BitConverter.SingleToInt32Bits(withVnni));
                }
            }
            finally
            {
                IntegerDot.VnniEnabled = previous;
            }
        }
    }

    [Fact]
    public void Q6_K_dot_on_raw_bytes_gives_the_integers_of_the_scalar_dot()
    {
        // Any level 0..63 and any group scale −128..127 (the reference quantizer never writes some of them), and an
        // activation block of ±127 values: the shuffled scale pairs and the vpdpwssd/vpmaddwd sums must hold at the ends.
        var random = new Random(17);
        const int blocks = 5, cols = blocks * 256;
        var ws = new byte[blocks * Q6_K.BlockBytes];
        random.NextBytes(ws);
        for (int b = 0; b < blocks; b++)
            MemoryMarshal.Write(ws.AsSpan(b * Q6_K.BlockBytes + 208), Float16.FromFloat((float)(random.NextDouble() * 0.01 + 1e-4)));
        var x = RandomRow(random, cols, 99);
        for (int i = 256; i < 512; i++) x[i] = i % 3 == 0 ? -1 : 1; // block 1 quantizes to ±127
        var xs = Encode(WeightFormat.Q8_K, x);
        bool previous = IntegerDot.VnniEnabled;
        try
        {
            fixed (byte* wp = ws)
            fixed (byte* xp = xs)
            {
                double want = Q6_K.DotScalar(wp, xp, blocks), scale = 0;
                var wBack = Decode(WeightFormat.Q6_K, ws, cols);
                var xBack = Decode(WeightFormat.Q8_K, xs, cols);
                for (int i = 0; i < cols; i++) scale += Math.Abs((double)wBack[i] * xBack[i]);
                foreach (bool vnni in new[] { true, false })
                {
                    IntegerDot.VnniEnabled = vnni;
                    double got = Q6_K.Dot(wp, xp, blocks);
                    Assert.True(Math.Abs(got - want) <= 1e-5 * scale, $"vnni={vnni}: simd {got:R}, scalar {want:R} (Σ|w·x| {scale:E3})");
                }
            }
        }
        finally
        {
            IntegerDot.VnniEnabled = previous;
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(37)]
    [InlineData(896)]
    [InlineData(1003)]
    public void Half_dot_products_match_the_float_dot_of_converted_rows(int cols)
    {
        var random = new Random(cols);
        for (int trial = 0; trial < 6; trial++)
        {
            var w = RandomRow(random, cols, trial + 100);
            var x = RandomRow(random, cols, trial + 200);
            foreach (var format in new[] { WeightFormat.F16, WeightFormat.BF16 })
            {
                var ws = MemoryMarshal.Cast<byte, ushort>(Encode(format, w)).ToArray();
                var wBack = Decode(format, MemoryMarshal.AsBytes(ws.AsSpan()).ToArray(), cols);
                double want = 0, scale = 0;
                for (int i = 0; i < cols; i++)
                {
                    want += (double)wBack[i] * x[i];
                    scale += Math.Abs((double)wBack[i] * x[i]);
                }
                fixed (ushort* wp = ws)
                fixed (float* xp = x)
                {
                    double got = format == WeightFormat.F16 ? Float16.Dot(wp, xp, cols) : BFloat16.Dot(wp, xp, cols);
                    Assert.True(Math.Abs(got - want) <= Tolerance * scale, $"{format} cols={cols}: got {got:R}, reference {want:R}");
                }
            }
        }
    }

    [Fact]
    public void F16_dot_reads_subnormal_and_negative_zero_weights()
    {
        ushort[] w = { 0x0001, 0x8000, 0x03FF, 0x83FF, 0x7BFF, 0x3C00, 0xBC00, 0x0000, 0x0200 };
        float[] x = { 1e6f, 5f, 1f, 2f, 1e-3f, 3f, 4f, 7f, 1f };
        double want = 0;
        for (int i = 0; i < w.Length; i++) want += (double)(float)BitConverter.UInt16BitsToHalf(w[i]) * x[i];
        fixed (ushort* wp = w)
        fixed (float* xp = x)
            Assert.Equal(want, Float16.Dot(wp, xp, w.Length), 1e-4 * Math.Abs(want));
    }

    [Fact]
    public void F16_dot_takes_the_exact_path_for_chunks_with_subnormal_or_infinite_halves()
    {
        var random = new Random(8);
        const int n = 1024;
        var w = new ushort[n];
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            w[i] = Float16.FromFloat((float)(BlockFormatTests.Normal(random) * 0.5));
            x[i] = (float)BlockFormatTests.Normal(random);
        }
        for (int i = 96; i < 128; i += 3) w[i] = (ushort)(random.Next(1, 0x400) | (i % 2 << 15)); // subnormals, both signs
        for (int i = 300; i < 320; i++) w[i] = (ushort)(i % 2 == 0 ? 0x0000 : 0x8000);            // ±0 (the fast path)
        w[700] = 0x03FF;                                                                        // one subnormal in a chunk
        double want = 0, scale = 0;
        for (int i = 0; i < n; i++)
        {
            double term = (double)(float)BitConverter.UInt16BitsToHalf(w[i]) * x[i];
            want += term;
            scale += Math.Abs(term);
        }
        fixed (ushort* wp = w)
        fixed (float* xp = x)
        {
            Assert.True(Math.Abs(Float16.Dot(wp, xp, n) - want) <= Tolerance * scale);
            wp[500] = 0x7C00; // +inf weight
            xp[500] = 1f;
            Assert.Equal(float.PositiveInfinity, Float16.Dot(wp, xp, n));
            wp[501] = 0x7E00; // NaN weight
            Assert.True(float.IsNaN(Float16.Dot(wp, xp, n)));
        }
    }

    /// <summary>Random normal values; kinds 0–3 splice in edge blocks from the golden input.</summary>
    internal static float[] RandomRow(Random random, int n, int kind)
    {
        var row = new float[n];
        for (int i = 0; i < n; i++) row[i] = (float)(BlockFormatTests.Normal(random) * 0.3);
        if (kind < 4)
        {
            var golden = GgmlGolden.Floats("input");
            for (int b = 0; b * 256 < n; b++)
            {
                int source = (b + kind * 5) % 16;
                Array.Copy(golden, source * 256, row, b * 256, Math.Min(256, n - b * 256));
            }
        }
        return row;
    }

    static byte[] Encode(WeightFormat format, float[] values)
    {
        var stored = new byte[WeightFormats.ByteCount(format, values.Length, "test")];
        WeightCodec.Encode(format, values, stored);
        return stored;
    }

    static float[] Decode(WeightFormat format, byte[] stored, int n)
    {
        var values = new float[n];
        WeightCodec.Decode(format, stored, values);
        return values;
    }
}
