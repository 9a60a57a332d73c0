namespace Pargs.Evaluation;

/// <summary>
/// Coherence as in ARGS: the cosine similarity between an embedding of the prompt and an embedding of its
/// continuation, averaged over (prompt, continuation) pairs. ARGS embeds with SimCSE; Pargs takes the
/// embedding function as a delegate (the CLI passes the base LM's mean-pooled last hidden state), so this
/// class stays model-free. A zero vector has no direction: its cosine is defined as 0.
/// </summary>
public static class Coherence
{
    public static double Cosine(IReadOnlyList<float> a, IReadOnlyList<float> b)
    {
        if (a.Count != b.Count)
            throw new ArgumentException($"Embeddings differ in length: {a.Count} vs {b.Count}.");
        double dot = 0, normA = 0, normB = 0;
        for (int i = 0; i < a.Count; i++)
        {
            dot += (double)a[i] * b[i];
            normA += (double)a[i] * a[i];
            normB += (double)b[i] * b[i];
        }
        return normA == 0 || normB == 0 ? 0.0 : dot / Math.Sqrt(normA * normB);
    }

    /// <summary>Mean cosine(embed(prompt), embed(continuation)); NaN when there are no pairs.</summary>
    public static double Mean(IEnumerable<(string Prompt, string Continuation)> pairs, Func<string, float[]> embed)
        => MeanOf(pairs.Select(p => Cosine(embed(p.Prompt), embed(p.Continuation))));

    /// <summary>The mean of per-pair cosines (summed in order, as <see cref="Mean"/>); NaN when there are none.</summary>
    public static double MeanOf(IEnumerable<double> cosines)
    {
        double sum = 0;
        int count = 0;
        foreach (var c in cosines)
        {
            sum += c;
            count++;
        }
        return count == 0 ? double.NaN : sum / count;
    }
}
