namespace Pargs.Evaluation;

/// <summary>
/// The ARGS diversity metric (Khanov et al. 2024, <c>metrics.py</c> of deeplearning-wisc/args), computed per
/// generation and averaged over generations:
/// <code>
/// rep_n(text)     = 1 − |unique n-grams| / (|n-grams| + 1)
/// diversity(text) = Π_{n=2..4} (1 − rep_n) = Π_{n=2..4} |unique n-grams| / (|n-grams| + 1)
/// </code>
/// The "+1" in the denominator is ARGS's own (it keeps the ratio defined for short texts), so even a text with
/// no repetition scores below 1 — e.g. 5 distinct words: 4/5 · 3/4 · 2/3 = 0.4; the metric rewards length as
/// well as novelty, compare methods at similar lengths. A text with fewer than n words has no n-grams, so its
/// factor is 0/1 = 0 and its diversity is 0; an empty generation (ARGS replaces it by " ") is 0 too.
/// Difference from ARGS: words are whitespace-separated (ARGS uses NLTK's word_tokenize, which also splits
/// off punctuation); texts are compared as given (case-sensitive, no Unicode normalisation).
/// </summary>
public static class Diversity
{
    /// <summary>ARGS's rep_n as a fraction in [0, 1): 1 − unique / (total + 1).</summary>
    public static double RepetitionRate(string text, int n)
    {
        var (unique, total) = CountNgrams(Words(text), n);
        return 1.0 - (double)unique / (total + 1);
    }

    /// <summary>Π_{n=2..4} (1 − rep_n) of one text.</summary>
    public static double OfText(string text)
    {
        var words = Words(text);
        double diversity = 1.0;
        for (int n = 2; n <= 4; n++)
        {
            var (unique, total) = CountNgrams(words, n);
            diversity *= (double)unique / (total + 1);
        }
        return diversity;
    }

    /// <summary>Mean of <see cref="OfText"/> over the generations; NaN when there are none.</summary>
    public static double Mean(IEnumerable<string> generations)
    {
        var values = generations.Select(OfText).ToList();
        return values.Count == 0 ? double.NaN : values.Average();
    }

    /// <summary>(distinct n-grams, n-gram count) of a word sequence; (0, 0) when shorter than n.</summary>
    public static (int Unique, int Total) CountNgrams(IReadOnlyList<string> words, int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), "n-grams need n ≥ 1.");
        int total = Math.Max(0, words.Count - n + 1);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < total; i++)
            seen.Add(string.Join('\u0001', words.Skip(i).Take(n)));   // \u0001 cannot occur inside a word
        return (seen.Count, total);
    }

    public static string[] Words(string text) =>
        text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
}
