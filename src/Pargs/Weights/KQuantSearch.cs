using System.Runtime.CompilerServices;

namespace Pargs.Weights;

/// <summary>
/// The scale searches of ggml's reference quantizers (ggml-quants.c: nearest_int, make_qkx2_quants,
/// make_qx_quants) and the 6-bit scale/min packing of Q4_K and Q5_K. Written from the format's definition
/// and checked bit for bit against llama.cpp's own quantize_row_*_ref (tools/ggml-golden): every float
/// operation happens in the same order and precision, because a different rounding anywhere changes the
/// chosen scale and so the file's bytes.
/// </summary>
internal static class KQuantSearch
{
    /// <summary>Round to nearest, ties to even, for |f| ≤ 2^22: ggml's nearest_int (the 1.5·2^23 trick).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float f)
    {
        float shifted = f + 12582912f;
        int bits = BitConverter.SingleToInt32Bits(shifted);
        return (bits & 0x007fffff) - 0x00400000;
    }

    /// <summary>
    /// A float converted to int8 as ggml's C code does it on x86 (<c>(int8_t)f</c>: cvttss2si, then the low byte).
    /// WHY: a block of float subnormals makes 1/d infinite, and C's out-of-range conversion gives 0x80000000
    /// (low byte 0) where .NET saturates; matching it keeps even those blocks' bytes identical to llama.cpp's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static sbyte CInt8(float f)
        => (sbyte)(float.IsNaN(f) || f >= 2147483648f || f < -2147483648f ? int.MinValue : (int)f);

    /// <summary>
    /// Affine quantization of <paramref name="x"/> to levels 0..<paramref name="nmax"/> as value ≈ scale·L − min,
    /// minimising the weighted squared (or absolute) error over nstep+1 candidate scales around nmax/(max−min),
    /// each refined by weighted least squares. Returns the scale; <paramref name="theMin"/> gets min (≥ 0).
    /// </summary>
    public static float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> L,
                                       out float theMin, Span<byte> Laux, float rmin, float rdelta, int nstep, bool useMad)
    {
        float min = x[0];
        float max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; ++i)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            for (int i = 0; i < n; ++i) L[i] = 0;
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; ++i)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; ++step)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; ++i)
            {
                int l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                Laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error = 0;
                for (int i = 0; i < n; ++i)
                {
                    float diff = thisScale * Laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    error += weights[i] * diff;
                }
                if (error < bestError)
                {
                    for (int i = 0; i < n; ++i) L[i] = Laux[i];
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>Smallest |max| ggml treats as a non-zero group (GROUP_MAX_EPS).</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>
    /// Symmetric quantization of <paramref name="x"/> to levels −nmax..nmax−1 (stored +nmax) with the scale
    /// that maximises the x²-weighted fit over 19 candidates (make_qx_quants with rmse_type 1, no weights).
    /// </summary>
    public static float MakeQxQuants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; ++i)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            for (int i = 0; i < n; ++i) L[i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        float sumLX = 0;
        float sumL2 = 0;
        for (int i = 0; i < n; ++i)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0f;
        float best = scale * sumLX;
        for (int step = -9; step <= 9; ++step)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumLX = sumL2 = 0;
            for (int i = 0; i < n; ++i)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                float w = x[i] * x[i];
                sumLX += w * x[i] * l;
                sumL2 += w * l * l;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2)
            {
                for (int i = 0; i < n; ++i)
                {
                    int l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }

    /// <summary>
    /// The part quantize_row_q4_K_ref and quantize_row_q5_K_ref share for one super-block of 256 values: each
    /// 32-value sub-block's scale and min by make_qkx2_quants (<paramref name="nmax"/>, <paramref name="rmin"/>,
    /// <paramref name="nstep"/> are the format's), the 6-bit scales and mins packed at <paramref name="block"/>[4..16]
    /// under the f16 d and dmin at [0..4], then every value's level 0..<paramref name="nmax"/> in <paramref name="levels"/>
    /// against the stored (rounded) scales. The caller packs the levels in its own layout.
    /// </summary>
    public static void ScaleMinSuperBlock(ReadOnlySpan<float> xb, Span<byte> block, Span<byte> levels, int nmax, float rmin, int nstep)
    {
        Span<byte> Laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        Span<byte> ls = stackalloc byte[8];
        Span<byte> lm = stackalloc byte[8];
        var packed = block.Slice(4, 12);
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; ++j)
        {
            var xs = xb.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int l = 0; l < 32; ++l) sumX2 += xs[l] * xs[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = MakeQkx2Quants(32, nmax, xs, weights, levels.Slice(32 * j, 32), out mins[j], Laux, rmin, 0.1f, nstep, false);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (int j = 0; j < 8; ++j)
        {
            ls[j] = Math.Min((byte)63, (byte)NearestInt(invScale * scales[j]));
            lm[j] = Math.Min((byte)63, (byte)NearestInt(invMin * mins[j]));
        }
        PackScaleMins(ls, lm, packed);
        Q8_0.WriteHalf(block, Float16.FromFloat(maxScale / 63f));
        Q8_0.WriteHalf(block[2..], Float16.FromFloat(maxMin / 63f));
        float dStored = Float16.ToFloat(Q8_0.ReadHalf(block)), dminStored = Float16.ToFloat(Q8_0.ReadHalf(block[2..]));
        for (int j = 0; j < 8; ++j)
        {
            ScaleMin(j, packed, out int sc, out int m);
            float d = dStored * sc;
            if (d == 0) continue;
            float dm = dminStored * m;
            for (int i = 0; i < 32; ++i)
            {
                int l = NearestInt((xb[32 * j + i] + dm) / d);
                levels[32 * j + i] = (byte)Math.Max(0, Math.Min(nmax, l));
            }
        }
    }

    /// <summary>Sub-block <paramref name="j"/>'s 6-bit scale and min from the 12 packed bytes of Q4_K / Q5_K (get_scale_min_k4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScaleMin(int j, ReadOnlySpan<byte> q, out int scale, out int min)
    {
        if (j < 4)
        {
            scale = q[j] & 63;
            min = q[j + 4] & 63;
        }
        else
        {
            scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>Packs eight 6-bit scales and mins into 12 bytes, the inverse of <see cref="ScaleMin"/>.</summary>
    public static void PackScaleMins(ReadOnlySpan<byte> scales, ReadOnlySpan<byte> mins, Span<byte> q)
    {
        q[..12].Clear();
        for (int j = 0; j < 8; ++j)
        {
            byte ls = scales[j], lm = mins[j];
            if (j < 4)
            {
                q[j] = ls;
                q[j + 4] = lm;
            }
            else
            {
                q[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                q[j - 4] |= (byte)((ls >> 4) << 6);
                q[j] |= (byte)((lm >> 4) << 6);
            }
        }
    }
}
