namespace Pargs.Benchmarks;

/// <summary>
/// The arithmetic and weight traffic of a decoding run per generated token, counted from the model's shape (a
/// Llama-family LM and a reward model of the same backbone shape), so that <c>bench decode</c> can show what a
/// time ratio should be compared with. WHY: PARGS / top-k in time lies between two limits. When reading the
/// weights dominates a step (models far larger than the cache, e.g. 15M), each step reads the LM's weights
/// once and the reward model's once, whatever k is: the ratio tends to the weight-bytes ratio (≈ 1.4–2). When
/// the weights stay in cache (stories260K: 1 MB each), the k candidates cost k tokens of arithmetic: the ratio
/// tends to the multiply-add ratio (≈ 4–7 at k = 10), and only fixed per-step costs shared by both methods hold
/// the measured ratio below it.
/// </summary>
public static class DecodeWork
{
    /// <summary>Per generated token: multiply-adds and bytes of float32 weights read.</summary>
    public sealed record PerToken(double MultiplyAdds, double WeightBytes);

    /// <summary>Top-k (or any base-LM-only method): a prefill of the prompt, then one LM step per further token.</summary>
    public static PerToken TopK(Models.ModelConfig c, int promptLength, int newTokens)
    {
        double macs = Prefill(c, promptLength) + LmHead(c); // the prompt's last position gives the first token
        double bytes = 4.0 * (BackboneWeights(c) + LmHead(c));
        // The last token needs no LM step after it (TokenwiseDecoder stops before one whose logits nobody reads).
        for (int t = 1; t < newTokens; t++)
        {
            macs += Token(c, attendedSlots: promptLength + t) + LmHead(c);
            bytes += 4.0 * (BackboneWeights(c) + LmHead(c));
        }
        return new PerToken(macs / newTokens, bytes / newTokens);
    }

    /// <summary>
    /// ARGS / PARGS with k candidates: top-k's work, plus the reward model's prefill and, every step, k one-token
    /// extensions over its cached prefix (each candidate attends to the prefix and itself) and its score head.
    /// </summary>
    public static PerToken Guided(Models.ModelConfig c, int promptLength, int newTokens, int k)
    {
        var topK = TopK(c, promptLength, newTokens);
        double macs = Prefill(c, promptLength);
        double bytes = 4.0 * BackboneWeights(c);
        for (int t = 0; t < newTokens; t++)
        {
            macs += k * (Token(c, attendedSlots: promptLength + t + 1) + c.HiddenSize);
            bytes += 4.0 * (BackboneWeights(c) + c.HiddenSize);
        }
        return new PerToken(topK.MultiplyAdds + macs / newTokens, topK.WeightBytes + bytes / newTokens);
    }

    /// <summary>Weights of the transformer layers (embeddings are looked up, not multiplied).</summary>
    public static long BackboneWeights(Models.ModelConfig c)
        => (long)c.NumLayers * ((long)c.HiddenSize * (c.HiddenSize + 2 * c.KvDim) + (long)c.HiddenSize * c.HiddenSize
                                + 3L * c.HiddenSize * c.IntermediateSize);

    /// <summary>One token through the layers: every weight once, plus q·k and p·v over the attended slots.</summary>
    static double Token(Models.ModelConfig c, int attendedSlots)
        => BackboneWeights(c) + 2.0 * c.NumLayers * c.NumHeads * (double)attendedSlots * c.HeadDim;

    /// <summary>A causal prefill of n tokens: token i attends to i slots.</summary>
    static double Prefill(Models.ModelConfig c, int n)
    {
        double macs = 0;
        for (int i = 1; i <= n; i++) macs += Token(c, attendedSlots: i);
        return macs;
    }

    static long LmHead(Models.ModelConfig c) => (long)c.HiddenSize * c.VocabSize;
}
