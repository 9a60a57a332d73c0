using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Pargs.Models.Cpu;

// CpuOps, part 3 of 3: scaled_dot_product_attention of a few queries over one kv head's cache.
public static unsafe partial class CpuOps
{
    /// <summary>
    /// scaled_dot_product_attention for the <paramref name="queries"/> query rows [queries, D] that share one kv
    /// head: scores = q·Kᵀ/√D + mask, then per query a softmax and Σ p_s·v_s. keys/values point at slot 0 of the
    /// head's cache ([slots, D] contiguous); maskAdd[i] is query i's additive mask row (0 = may attend, −inf =
    /// may not) of <paramref name="slots"/> floats; query i's output is written at output[i].
    /// <paramref name="scratch"/> holds <see cref="AttendScratchFloats"/> floats.
    /// <para><paramref name="scale"/> replaces 1/√D when positive (Gemma's query_pre_attn_scalar^−½); a positive
    /// <paramref name="softCap"/> c soft-caps the scaled scores as tanh(s / c) · c before the mask (Gemma-2's
    /// attn_logit_softcapping, in transformers' order). Soft-capped scores take the row-by-row path (the tanh is per score).</para>
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Attend(float* q, int queries, float* keys, float* values, float** maskAdd, int slots, int headDim,
                              float* scratch, float** output, float scale = 0, float softCap = 0)
    {
        if (!(scale > 0)) scale = 1f / MathF.Sqrt(headDim);
        if (!(softCap > 0) && BySlotBlocks(queries, headDim))
        {
            AttendBySlotBlocks(q, queries, keys, values, maskAdd, slots, headDim, scale, scratch, output);
            return;
        }
        float* scores = scratch;
        MatMul(q, queries, headDim, keys, null, scores, slots, 0, slots);
        for (int i = 0; i < queries; i++)
        {
            if (softCap > 0) SoftCapAndMask(scores + (long)i * slots, scale, softCap, maskAdd[i], slots);
            else ScaleAndMask(scores + (long)i * slots, scale, maskAdd[i], slots);
        }
        for (int i = 0; i < queries; i++)
        {
            float* row = scores + (long)i * slots;
            float* o = output[i];
            float max = Max(row, slots);
            if (float.IsNegativeInfinity(max)) // nothing allowed (never happens: every query sees itself)
            {
                new Span<float>(o, headDim).Clear();
                continue;
            }
            float total = SoftmaxNumerators(row, slots, max);
            WeightedSum(row, values, slots, headDim, o);
            Scale(o, 1f / total, headDim);
        }
    }

    /// <summary>
    /// row = tanh(row·scale / cap)·cap + mask, eight at a time (<see cref="Tanh"/>), the tail scalar — computed as torch does
    /// (the scaled score divided by the cap, not multiplied by its inverse).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void SoftCapAndMask(float* row, float scale, float cap, float* mask, int n)
    {
        var scaleV = Vector256.Create(scale);
        var capV = Vector256.Create(cap);
        int i = 0;
        for (; i + 8 <= n; i += 8) (Tanh(Vector256.Load(row + i) * scaleV / capV) * capV + Vector256.Load(mask + i)).Store(row + i);
        for (; i < n; i++) row[i] = MathF.Tanh(row[i] * scale / cap) * cap + mask[i];
    }

    /// <summary>
    /// tanh, eight at a time, to a few float32 ulps: for |x| ≤ 1 the [7/6] Padé approximant from Lambert's continued
    /// fraction, x(135135 + 17325x² + 378x⁴ + x⁶) / (135135 + 62370x² + 3150x⁴ + 28x⁶) (relative error under 3e-12 there,
    /// before rounding); beyond, sign(x)·(1 − 2 / (e^{2|x|} + 1)), which has no cancellation once |tanh x| > 0.76.
    /// WHY: a soft-capped score needs one tanh per (query, slot); MathF.Tanh one at a time made Gemma-2's attention
    /// the step's largest cost.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public static Vector256<float> Tanh(Vector256<float> x)
    {
        var x2 = x * x;
        var numerator = Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(x2, Vector256<float>.One,
            Vector256.Create(378f)), x2, Vector256.Create(17325f)), x2, Vector256.Create(135135f)) * x;
        var denominator = Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(x2, Vector256.Create(28f),
            Vector256.Create(3150f)), x2, Vector256.Create(62370f)), x2, Vector256.Create(135135f));
        var pade = numerator / denominator;
        var magnitude = Vector256.Abs(x);
        var far = Vector256<float>.One - Vector256.Create(2f) / (Exp(magnitude + magnitude) + Vector256<float>.One);
        var signed = far | (x & Vector256.Create(-0f)); // far ≥ 0: OR in x's sign bit
        return Vector256.ConditionalSelect(Vector256.LessThanOrEqual(magnitude, Vector256<float>.One), pade, signed);
    }

    /// <summary>Floats of scratch <see cref="Attend"/> needs (<paramref name="softCapped"/>: with a positive softCap).</summary>
    public static long AttendScratchFloats(int queries, int slots, int headDim, bool softCapped = false)
        => !softCapped && BySlotBlocks(queries, headDim) ? (2L * headDim + 2) * PaddedSlots(slots) : (long)queries * slots;

    /// <summary>Slots rounded up to whole blocks of 8: the slot-block scratch holds keys, values (D each) and two score rows (a query pair's) of this many.</summary>
    static int PaddedSlots(int slots) => (slots + 7) / 8 * 8;

    /// <summary>
    /// Small heads (D = 8 or 16: stories260K) seen by several queries (sibling candidates, a prefill) take the
    /// slot-block path; wide heads are long enough for the dot products of <see cref="MatMul"/>.
    /// </summary>
    static bool BySlotBlocks(int queries, int headDim) => queries >= 4 && (headDim == 8 || headDim == 16);

    /// <summary>
    /// <see cref="Attend"/> with keys and values transposed, eight slots at a time, into D vectors of 8 slots
    /// (once per call, shared by every query). A query's scores then come from D broadcast FMAs per 8 slots and
    /// its weighted sum from D FMAs of the 8 softmax numerators — no horizontal sum per slot, which is what a dot
    /// product of 8 floats mostly costs, and eight independent FMA chains instead of one. Each query stops at its
    /// last allowed slot: a causal prefill skips its masked half, a sibling candidate the siblings after it.
    /// WHY: stories260K's 8-wide heads under ten sibling candidates made attention half of a sibling pass
    /// (docs/benchmarks.md).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void AttendBySlotBlocks(float* q, int queries, float* keys, float* values, float** maskAdd, int slots, int headDim,
                                   float scale, float* scratch, float** output)
    {
        int padded = PaddedSlots(slots);
        float* kt = scratch, vt = kt + (long)padded * headDim, p = vt + (long)padded * headDim;
        TransposeSlotBlocks(keys, slots, headDim, kt);
        TransposeSlotBlocks(values, slots, headDim, vt);
        var scaleV = Vector256.Create(scale);
        float* tailMask = stackalloc float[8];
        // A query whose mask row is the previous query's (the query heads of one kv head, for one token: the caller
        // passes one row for them) reuses its last allowed slot and padded last block instead of scanning the mask again.
        float* previousMask = null;
        int end = 0, blocks = 0;
        for (int i = 0; i < queries; i++)
        {
            float* qi = q + (long)i * headDim, mask = maskAdd[i], o = output[i];
            if (mask != previousMask)
            {
                previousMask = mask;
                end = slots;
                while (end > 0 && float.IsNegativeInfinity(mask[end - 1])) end--;
                blocks = (end + 7) / 8;
                // The last block's mask, padded with −inf past the last slot (lanes at or past `slots` have zero keys and
                // values; lanes from `end` to `slots` hold real ones, silenced by their −inf mask).
                int last = (blocks - 1) * 8;
                if (end > 0)
                    for (int j = 0; j < 8; j++) tailMask[j] = last + j < slots ? mask[last + j] : float.NegativeInfinity;
            }
            if (end == 0) // nothing allowed (never happens: every query sees itself)
            {
                new Span<float>(o, headDim).Clear();
                continue;
            }
            if (headDim == 8 && i + 1 < queries && maskAdd[i + 1] == mask)
            {
                AttendPair8(qi, qi + 8, kt, vt, mask, tailMask, blocks, scaleV, p, p + padded, o, output[i + 1]);
                i++;
                continue;
            }

            // Scores (scaled, masked) into p, and their max; then the softmax numerators and Σ p_s·v_s, eight
            // output dimensions per pass over the blocks.
            var max = Vector256.Create(HorizontalMax(SlotBlockScores(qi, kt, headDim, mask, tailMask, blocks, scaleV, p)));
            var total = Vector256<float>.Zero;
            for (int c = 0; c < headDim; c += 8)
            {
                var sums = SlotBlockWeightedSum(p, vt + c * 8, headDim * 8, blocks, max, c == 0, headDim > 8, ref total);
                (sums * Vector256.Create(1f / Vector256.Sum(total))).Store(o + c);
            }
        }
    }

    /// <summary>
    /// Two queries of head size 8 under one mask row (the two query heads of a kv head for one token), with the bits of
    /// two passes of <see cref="AttendBySlotBlocks"/>' single-query body: the same operations per query in the same
    /// order, only interleaved. WHY: a sibling candidate's query over a ~50-slot prefix is ~7 blocks, too short for the
    /// out-of-order window to hide its chain (scores → max → exps → sums → 1/total); two independent chains in one
    /// loop overlap. <paramref name="pa"/> and <paramref name="pb"/> hold one score row each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void AttendPair8(float* qa, float* qb, float* kt, float* vt, float* mask, float* lastMask, int blocks,
                            Vector256<float> scale, float* pa, float* pb, float* oa, float* ob)
    {
        var maxA = Vector256.Create(float.NegativeInfinity); var maxB = maxA;
        {
            var a0 = Vector256.Create(qa[0]); var a1 = Vector256.Create(qa[1]); var a2 = Vector256.Create(qa[2]); var a3 = Vector256.Create(qa[3]);
            var a4 = Vector256.Create(qa[4]); var a5 = Vector256.Create(qa[5]); var a6 = Vector256.Create(qa[6]); var a7 = Vector256.Create(qa[7]);
            float* k = kt, m = mask;
            for (int b = 0; b < blocks; b++, k += 64, m += 8)
            {
                var k0 = Vector256.Load(k); var k1 = Vector256.Load(k + 8); var k2 = Vector256.Load(k + 16); var k3 = Vector256.Load(k + 24);
                var k4 = Vector256.Load(k + 32); var k5 = Vector256.Load(k + 40); var k6 = Vector256.Load(k + 48); var k7 = Vector256.Load(k + 56);
                var maskV = Vector256.Load(b == blocks - 1 ? lastMask : m);
                // SlotBlockScores' two chains of four, for each query.
                var s = Vector256.FusedMultiplyAdd(a0, k0, a1 * k1);
                var e = Vector256.FusedMultiplyAdd(a2, k2, a3 * k3);
                s = Vector256.FusedMultiplyAdd(a4, k4, s);
                e = Vector256.FusedMultiplyAdd(a5, k5, e);
                s = Vector256.FusedMultiplyAdd(a6, k6, s);
                e = Vector256.FusedMultiplyAdd(a7, k7, e);
                s = Vector256.FusedMultiplyAdd(s + e, scale, maskV);
                maxA = Vector256.MaxNative(maxA, s);
                s.Store(pa + b * 8);
                var t = Vector256.FusedMultiplyAdd(Vector256.Create(qb[0]), k0, Vector256.Create(qb[1]) * k1);
                var u = Vector256.FusedMultiplyAdd(Vector256.Create(qb[2]), k2, Vector256.Create(qb[3]) * k3);
                t = Vector256.FusedMultiplyAdd(Vector256.Create(qb[4]), k4, t);
                u = Vector256.FusedMultiplyAdd(Vector256.Create(qb[5]), k5, u);
                t = Vector256.FusedMultiplyAdd(Vector256.Create(qb[6]), k6, t);
                u = Vector256.FusedMultiplyAdd(Vector256.Create(qb[7]), k7, u);
                t = Vector256.FusedMultiplyAdd(t + u, scale, maskV);
                maxB = Vector256.MaxNative(maxB, t);
                t.Store(pb + b * 8);
            }
        }
        maxA = Vector256.Create(HorizontalMax(maxA));
        maxB = Vector256.Create(HorizontalMax(maxB));
        // The softmax numerators of both, kept in the score rows (SlotBlockWeightedSum's exponentiate-and-keep).
        var totalA = Vector256<float>.Zero; var totalB = totalA;
        for (int b = 0; b < blocks; b++)
        {
            var ea = Exp(Vector256.Load(pa + b * 8) - maxA);
            var eb = Exp(Vector256.Load(pb + b * 8) - maxB);
            totalA += ea; totalB += eb;
            ea.Store(pa + b * 8); eb.Store(pb + b * 8);
        }
        var unused = Vector256<float>.Zero;
        var sumsA = SlotBlockWeightedSum(pa, vt, 64, blocks, maxA, false, false, ref unused);
        var sumsB = SlotBlockWeightedSum(pb, vt, 64, blocks, maxB, false, false, ref unused);
        (sumsA * Vector256.Create(1f / Vector256.Sum(totalA))).Store(oa);
        (sumsB * Vector256.Create(1f / Vector256.Sum(totalB))).Store(ob);
    }

    /// <summary>
    /// p[s] = q·k_s·scale + mask[s] for the slots of <paramref name="blocks"/> blocks of <paramref name="kt"/>
    /// (<see cref="TransposeSlotBlocks"/>); returns their lane-wise max. The last block takes its mask from
    /// <paramref name="lastMask"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector256<float> SlotBlockScores(float* q, float* kt, int headDim, float* mask, float* lastMask, int blocks,
                                            Vector256<float> scale, float* p)
    {
        var maxV = Vector256.Create(float.NegativeInfinity);
        for (int c = 0; c < headDim; c += 8)
        {
            var q0 = Vector256.Create(q[c]); var q1 = Vector256.Create(q[c + 1]);
            var q2 = Vector256.Create(q[c + 2]); var q3 = Vector256.Create(q[c + 3]);
            var q4 = Vector256.Create(q[c + 4]); var q5 = Vector256.Create(q[c + 5]);
            var q6 = Vector256.Create(q[c + 6]); var q7 = Vector256.Create(q[c + 7]);
            bool first = c == 0, final = c + 8 == headDim;
            float* k = kt + c * 8, pb = p, m = mask;
            long stride = headDim * 8L;
            for (int b = 0; b < blocks; b++, k += stride, pb += 8, m += 8)
            {
                // Two FMA chains of four, so that consecutive blocks overlap in the pipeline.
                var a = Vector256.FusedMultiplyAdd(q0, Vector256.Load(k), q1 * Vector256.Load(k + 8));
                var e = Vector256.FusedMultiplyAdd(q2, Vector256.Load(k + 16), q3 * Vector256.Load(k + 24));
                a = Vector256.FusedMultiplyAdd(q4, Vector256.Load(k + 32), a);
                e = Vector256.FusedMultiplyAdd(q5, Vector256.Load(k + 40), e);
                a = Vector256.FusedMultiplyAdd(q6, Vector256.Load(k + 48), a);
                e = Vector256.FusedMultiplyAdd(q7, Vector256.Load(k + 56), e);
                a += e;
                if (!first) a += Vector256.Load(pb);
                if (final)
                {
                    a = Vector256.FusedMultiplyAdd(a, scale, Vector256.Load(b == blocks - 1 ? lastMask : m));
                    // vmaxps: Vector256.Max's NaN and −0 rules cost eight instructions here, and a NaN score still
                    // reaches the output through its exp.
                    maxV = Vector256.MaxNative(maxV, a);
                }
                a.Store(pb);
            }
        }
        return maxV;
    }

    /// <summary>
    /// Σ_s p[s]·v[s, c..c+7] over the blocks, as one vector of the eight sums, for <paramref name="vt"/> pointing at
    /// dimension c of block 0 (blocks <paramref name="stride"/> floats apart). With <paramref name="exponentiate"/>,
    /// p holds scores: they are first replaced by exp(score − max) (kept in p when <paramref name="keep"/>) and
    /// added to <paramref name="total"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector256<float> SlotBlockWeightedSum(float* p, float* vt, long stride, int blocks, Vector256<float> max,
                                                 bool exponentiate, bool keep, ref Vector256<float> total)
    {
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var a4 = a0; var a5 = a0; var a6 = a0; var a7 = a0;
        var sum = Vector256<float>.Zero;
        float* v = vt, pb = p;
        for (int b = 0; b < blocks; b++, v += stride, pb += 8)
        {
            var e = Vector256.Load(pb);
            if (exponentiate)
            {
                e = Exp(e - max);
                sum += e;
                if (keep) e.Store(pb);
            }
            a0 = Vector256.FusedMultiplyAdd(e, Vector256.Load(v), a0);
            a1 = Vector256.FusedMultiplyAdd(e, Vector256.Load(v + 8), a1);
            a2 = Vector256.FusedMultiplyAdd(e, Vector256.Load(v + 16), a2);
            a3 = Vector256.FusedMultiplyAdd(e, Vector256.Load(v + 24), a3);
            a4 = Vector256.FusedMultiplyAdd(e, Vector256.Load(v + 32), a4);
            a5 = Vector256.FusedMultiplyAdd(e, Vector256.Load(v + 40), a5);
            a6 = Vector256.FusedMultiplyAdd(e, Vector256.Load(v + 48), a6);
            a7 = Vector256.FusedMultiplyAdd(e, Vector256.Load(v + 56), a7);
        }
        if (exponentiate) total = sum;
        return SumEach(a0, a1, a2, a3, a4, a5, a6, a7);
    }

    /// <summary>
    /// src [slots, D] → dst in blocks of eight slots: dst[((b·D + d)·8 + j] = src[b·8 + j, d], the last block
    /// zero-padded. D is a multiple of 8.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TransposeSlotBlocks(float* src, int slots, int headDim, float* dst)
    {
        int b = 0;
        for (; (b + 1) * 8 <= slots; b++)
            for (int c = 0; c < headDim; c += 8)
                Transpose8x8(src + (long)b * 8 * headDim + c, headDim, dst + ((long)b * headDim + c) * 8);
        int rest = slots - b * 8;
        if (rest == 0) return;
        float* tail = stackalloc float[8 * headDim];
        new Span<float>(tail, 8 * headDim).Clear();
        Buffer.MemoryCopy(src + (long)b * 8 * headDim, tail, 8L * headDim * 4, (long)rest * headDim * 4);
        for (int c = 0; c < headDim; c += 8)
            Transpose8x8(tail + c, headDim, dst + ((long)b * headDim + c) * 8);
    }

    /// <summary>
    /// The 8 × 8 block at src (rows <paramref name="stride"/> floats apart) transposed into dst (rows
    /// <paramref name="dstStride"/> floats apart: 8 for attention's packed keys, CpuGemm's panel width for its panels).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void Transpose8x8(float* src, int stride, float* dst, int dstStride = 8)
    {
        if (!Avx.IsSupported)
        {
            for (int r = 0; r < 8; r++)
                for (int c = 0; c < 8; c++) dst[(long)c * dstStride + r] = src[(long)r * stride + c];
            return;
        }
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + stride);
        var r2 = Avx.LoadVector256(src + 2L * stride); var r3 = Avx.LoadVector256(src + 3L * stride);
        var r4 = Avx.LoadVector256(src + 4L * stride); var r5 = Avx.LoadVector256(src + 5L * stride);
        var r6 = Avx.LoadVector256(src + 6L * stride); var r7 = Avx.LoadVector256(src + 7L * stride);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        long d = dstStride;
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + d, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * d, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * d, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * d, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * d, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * d, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * d, Avx.Permute2x128(u3, u7, 0x31));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float HorizontalMax(Vector256<float> v)
    {
        var m = Vector128.Max(v.GetLower(), v.GetUpper());
        return Math.Max(Math.Max(m.GetElement(0), m.GetElement(1)), Math.Max(m.GetElement(2), m.GetElement(3)));
    }

    /// <summary>row = row·scale + mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ScaleAndMask(float* row, float scale, float* mask, int n)
    {
        var scaleV = Vector256.Create(scale);
        int i = 0;
        for (; i + 8 <= n; i += 8) Vector256.FusedMultiplyAdd(Vector256.Load(row + i), scaleV, Vector256.Load(mask + i)).Store(row + i);
        for (; i < n; i++) row[i] = row[i] * scale + mask[i];
    }

    /// <summary>max of x (−inf when n = 0 or everything is −inf).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float Max(float* x, int n)
    {
        var m = Vector256.Create(float.NegativeInfinity);
        int i = 0;
        for (; i + 8 <= n; i += 8) m = Vector256.MaxNative(m, Vector256.Load(x + i));
        float max = float.NegativeInfinity;
        for (int j = 0; j < 8; j++) max = Math.Max(max, m.GetElement(j));
        for (; i < n; i++) max = Math.Max(max, x[i]);
        return max;
    }

    /// <summary>
    /// output[d] = Σ_s p[s]·v[s, d] for v [slots, D]. Slots outer, four at a time, so each value row is read once
    /// while it is in L1 (a pass over all slots per eight dimensions re-read V from L2 D/8 times: measured 6×
    /// slower at D = 48); the four products are summed in registers before touching the output.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WeightedSum(float* p, float* v, int slots, int headDim, float* output)
    {
        if (headDim == 8)
        {
            WeightedSum8(p, v, slots, output);
            return;
        }
        new Span<float>(output, headDim).Clear();
        int s = 0;
        for (; s + 4 <= slots; s += 4)
        {
            if (p[s] == 0f && p[s + 1] == 0f && p[s + 2] == 0f && p[s + 3] == 0f) continue; // masked (padding)
            var p0 = Vector256.Create(p[s]); var p1 = Vector256.Create(p[s + 1]);
            var p2 = Vector256.Create(p[s + 2]); var p3 = Vector256.Create(p[s + 3]);
            float* v0 = v + (long)s * headDim, v1 = v0 + headDim, v2 = v1 + headDim, v3 = v2 + headDim;
            int d = 0;
            for (; d + 8 <= headDim; d += 8)
            {
                var t = Vector256.FusedMultiplyAdd(p1, Vector256.Load(v1 + d), p0 * Vector256.Load(v0 + d));
                var u = Vector256.FusedMultiplyAdd(p3, Vector256.Load(v3 + d), p2 * Vector256.Load(v2 + d));
                (Vector256.Load(output + d) + (t + u)).Store(output + d);
            }
            for (; d < headDim; d++) output[d] += p[s] * v0[d] + p[s + 1] * v1[d] + p[s + 2] * v2[d] + p[s + 3] * v3[d];
        }
        for (; s < slots; s++)
            if (p[s] != 0f) Axpy(p[s], v + (long)s * headDim, output, headDim);
    }

    /// <summary>
    /// <see cref="WeightedSum"/> for D = 8 (stories260K): one vector per value row, four register accumulators over
    /// the slots, no memory traffic for the output until the end.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WeightedSum8(float* p, float* v, int slots, float* output)
    {
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        int s = 0;
        for (; s + 4 <= slots; s += 4)
        {
            a0 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s]), Vector256.Load(v + (long)s * 8), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s + 1]), Vector256.Load(v + (long)(s + 1) * 8), a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s + 2]), Vector256.Load(v + (long)(s + 2) * 8), a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s + 3]), Vector256.Load(v + (long)(s + 3) * 8), a3);
        }
        for (; s < slots; s++) a0 = Vector256.FusedMultiplyAdd(Vector256.Create(p[s]), Vector256.Load(v + (long)s * 8), a0);
        ((a0 + a1) + (a2 + a3)).Store(output);
    }

    /// <summary>x[i] = exp(x[i] − max) in place, eight at a time; returns their sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float SoftmaxNumerators(float* x, int n, float max)
    {
        var maxV = Vector256.Create(max);
        var sum = Vector256<float>.Zero;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var e = Exp(Vector256.Load(x + i) - maxV);
            e.Store(x + i);
            sum += e;
        }
        if (i < n)
        {
            // The last 1-7 values through the same vector exp (padding lanes are −inf, whose exp is 0): a scalar
            // MathF.Exp each cost as much as the whole vector loop for rows of ~100 slots.
            var tail = stackalloc float[8];
            new Span<float>(tail, 8).Fill(float.NegativeInfinity);
            for (int j = i; j < n; j++) tail[j - i] = x[j];
            var e = Exp(Vector256.Load(tail) - maxV);
            sum += e;
            e.Store(tail);
            for (int j = i; j < n; j++) x[j] = tail[j - i];
        }
        return Vector256.Sum(sum);
    }
}
