namespace Pargs.Rewards.Gold;

/// <summary>
/// A transparent sentiment score from the VADER lexicon, close to VADER's <c>compound</c>; the gold reward of
/// the embedded sentiment-steering task. <see cref="Score"/> = compound of the continuation (the prompt is
/// ignored) for the <see cref="Positive"/> target, −compound for <see cref="Negative"/>.
/// <para><b>Tokens.</b> The text is split on whitespace and lowercased (’ becomes '). A chunk that is itself a
/// lexicon entry is kept whole, which keeps emoticons such as <c>:)</c> or <c>:-(</c>. Otherwise characters that
/// are neither letters nor digits are trimmed from both ends (so <c>"good,"</c> → <c>good</c>, <c>don't!</c> →
/// <c>don't</c>, inner hyphens and apostrophes stay); a chunk left empty is dropped.</para>
/// <para><b>Valence of token i</b>, v = lexicon[token] (0 if absent), then, as in VADER:</para>
/// <list type="number">
/// <item>Booster words (<c>very</c>, <c>extremely</c>, … +0.293 = VADER's B_INCR; <c>slightly</c>, <c>barely</c>,
/// … −0.293 = B_DECR) score 0 themselves. For each of the 3 preceding tokens that is a booster and not a
/// lexicon entry, v += b·sign(v)·d with damping d = 1, 0.95, 0.9 for distance 1, 2, 3.</item>
/// <item><c>no</c> directly followed by a lexicon word scores 0 itself (it negates that word instead).</item>
/// <item>Negation: for each of the 3 preceding tokens that is a negator (<c>not</c>, <c>no</c>, <c>never</c>,
/// <c>without</c>, <c>nothing</c>, any token ending in <c>n't</c>, <c>dont</c>, <c>cant</c>, …), v *= −0.74
/// (VADER's N_SCALAR); two negators in the window multiply twice.</item>
/// <item>"but" rule: if the text contains <c>but</c>, valences before its first occurrence are ×0.5 and
/// after it ×1.5.</item>
/// </list>
/// <para><b>Compound</b>: s = Σ v, compound = s / √(s² + 15) ∈ (−1, 1) (VADER's normalisation, α = 15).</para>
/// <para><b>Differences from full VADER</b>: no ALL-CAPS emphasis, no "!"/"?" amplification, no idioms or
/// special phrases ("kind of", "the shit", "least", "never so"), multi-word lexicon entries
/// (<c>can't stand</c>, <c>fed up</c>) never match, no emoji-to-description translation, and VADER's
/// "≤2-character tokens keep their punctuation" quirk is replaced by the lexicon lookup above.</para>
/// </summary>
public sealed class LexiconSentiment : IGoldReward
{
    /// <summary>VADER's N_SCALAR: a negated valence is multiplied by this.</summary>
    public const double NegationScalar = -0.74;
    /// <summary>VADER's B_INCR / B_DECR magnitude.</summary>
    public const double BoosterIncrement = 0.293;
    /// <summary>VADER's normalisation constant α in s / √(s² + α).</summary>
    public const double NormalizationAlpha = 15.0;

    private static readonly HashSet<string> Negators = new(StringComparer.Ordinal)
    {
        "not", "no", "never", "none", "nope", "nor", "nothing", "nowhere", "neither", "without",
        "rarely", "seldom", "despite", "cannot", "aint", "arent", "cant", "couldnt", "darent", "didnt",
        "doesnt", "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neednt", "oughtnt",
        "shant", "shouldnt", "wasnt", "werent", "wont", "wouldnt", "uhuh", "uh-uh",
    };

    private static readonly Dictionary<string, double> Boosters = BuildBoosters();

    private readonly VaderLexicon _lexicon;
    private readonly double _sign;

    private LexiconSentiment(VaderLexicon lexicon, double sign, string name)
    {
        _lexicon = lexicon;
        _sign = sign;
        Name = name;
    }

    /// <summary>Rewards positive sentiment: Score = compound.</summary>
    public static LexiconSentiment Positive(VaderLexicon lexicon) => new(lexicon, +1, "vader-positive");

    /// <summary>Rewards negative sentiment: Score = −compound.</summary>
    public static LexiconSentiment Negative(VaderLexicon lexicon) => new(lexicon, -1, "vader-negative");

    public string Name { get; }

    public double Score(string prompt, string continuation) => _sign * Compound(continuation);

    /// <summary>VADER-style compound score of <paramref name="text"/>, in (−1, 1); 0 for text with no rated tokens.</summary>
    public double Compound(string text)
    {
        double s = Valences(Tokenize(text)).Sum();
        return s / Math.Sqrt(s * s + NormalizationAlpha);
    }

    /// <summary>Lowercased tokens as described in the class comment.</summary>
    public IReadOnlyList<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        foreach (var chunk in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            var lower = chunk.ToLowerInvariant().Replace('\u2019', '\'');
            if (_lexicon.Contains(lower)) { tokens.Add(lower); continue; }
            int start = 0, end = lower.Length;
            while (start < end && !char.IsLetterOrDigit(lower[start])) start++;
            while (end > start && !char.IsLetterOrDigit(lower[end - 1])) end--;
            if (end > start) tokens.Add(lower[start..end]);
        }
        return tokens;
    }

    /// <summary>Per-token valence after boosters, negation and the "but" rule (their sum is s).</summary>
    public double[] Valences(IReadOnlyList<string> tokens)
    {
        var valences = new double[tokens.Count];
        for (int i = 0; i < tokens.Count; i++)
            valences[i] = TokenValence(tokens, i);

        int but = IndexOf(tokens, "but");
        if (but >= 0)
            for (int i = 0; i < valences.Length; i++)
                if (i < but) valences[i] *= 0.5;
                else if (i > but) valences[i] *= 1.5;
        return valences;
    }

    private double TokenValence(IReadOnlyList<string> tokens, int i)
    {
        var token = tokens[i];
        if (Boosters.ContainsKey(token) || !_lexicon.TryGetValence(token, out var v)) return 0.0;
        if (token == "no" && i + 1 < tokens.Count && _lexicon.Contains(tokens[i + 1])) return 0.0;

        for (int distance = 1; distance <= 3 && i - distance >= 0; distance++)
        {
            var before = tokens[i - distance];
            if (Boosters.TryGetValue(before, out var b) && !_lexicon.Contains(before))
            {
                double damping = distance switch { 1 => 1.0, 2 => 0.95, _ => 0.9 };
                v += (v < 0 ? -b : b) * damping;
            }
        }
        for (int distance = 1; distance <= 3 && i - distance >= 0; distance++)
            if (IsNegator(tokens[i - distance])) v *= NegationScalar;
        return v;
    }

    /// <summary>True for VADER's negation words and any token ending in <c>n't</c>.</summary>
    public static bool IsNegator(string lowercaseToken) =>
        Negators.Contains(lowercaseToken) || lowercaseToken.EndsWith("n't", StringComparison.Ordinal);

    private static int IndexOf(IReadOnlyList<string> tokens, string word)
    {
        for (int i = 0; i < tokens.Count; i++) if (tokens[i] == word) return i;
        return -1;
    }

    // The single-word entries of VADER's BOOSTER_DICT (multi-word ones like "kind of" need phrase rules).
    private static Dictionary<string, double> BuildBoosters()
    {
        var boosters = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var w in ("absolutely amazingly awfully completely considerable considerably decidedly deeply " +
                 "effing enormous enormously entirely especially exceptional exceptionally extreme extremely " +
                 "fabulously flipping flippin frackin fracking fricking frickin frigging friggin fully greatly " +
                 "hella highly hugely incredible incredibly intensely major majorly more most particularly purely " +
                 "quite really remarkably so substantially thoroughly total totally tremendous tremendously uber " +
                 "unbelievably unusually utter utterly very").Split(' '))
            boosters[w] = BoosterIncrement;
        foreach (var w in ("almost barely hardly kinda kindof kind-of less little marginal marginally occasional " +
                 "occasionally partly scarce scarcely slight slightly somewhat sorta sortof sort-of").Split(' '))
            boosters[w] = -BoosterIncrement;
        return boosters;
    }
}
