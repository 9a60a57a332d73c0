using System.Globalization;

namespace Pargs.Rewards.Gold;

/// <summary>
/// The VADER sentiment lexicon (Hutto &amp; Gilbert 2014, MIT; shipped in <c>data/lexicons/vader/</c>): token →
/// mean human-rated valence in [−4, 4]. File format: one entry per line, TAB-separated
/// <c>token, mean valence, standard deviation, [10 raw ratings]</c>. Tokens are matched lowercase.
/// The file lists a few tokens twice (<c>ok</c>, <c>lol</c>…); the later line wins, as in VADER's Python
/// dictionary.
/// </summary>
public sealed class VaderLexicon
{
    /// <summary>Where the lexicon lives relative to the repository (or install) root.</summary>
    public const string RelativePath = "data/lexicons/vader/vader_lexicon.txt";

    private readonly Dictionary<string, double> _valences;

    private VaderLexicon(Dictionary<string, double> valences) => _valences = valences;

    public int Count => _valences.Count;

    public IReadOnlyDictionary<string, double> Valences => _valences;

    /// <summary>Valence of an already-lowercased token, if the lexicon rates it.</summary>
    public bool TryGetValence(string lowercaseToken, out double valence) =>
        _valences.TryGetValue(lowercaseToken, out valence);

    public bool Contains(string lowercaseToken) => _valences.ContainsKey(lowercaseToken);

    /// <summary>Reads the TAB-separated file; a malformed line throws a <see cref="PargsException"/> naming file and line.</summary>
    public static VaderLexicon Load(string path)
    {
        if (!File.Exists(path))
            throw new PargsException($"{path}: VADER lexicon file not found (expected {RelativePath}).");
        var valences = new Dictionary<string, double>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            var fields = line.Split('\t');
            if (fields.Length != 4)
                throw new PargsException($"{path}:{lineNumber}: expected 4 TAB-separated fields " +
                    $"(token, mean valence, standard deviation, ratings) but found {fields.Length}.");
            if (fields[0].Length == 0)
                throw new PargsException($"{path}:{lineNumber}: the token (field 1) is empty.");
            if (!double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var mean)
                || !double.IsFinite(mean))
                throw new PargsException($"{path}:{lineNumber}: field 2 (mean valence) must be a number, got '{fields[1]}'.");
            if (!double.TryParse(fields[2], NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                throw new PargsException($"{path}:{lineNumber}: field 3 (standard deviation) must be a number, got '{fields[2]}'.");
            valences[fields[0].ToLowerInvariant()] = mean;
        }
        if (valences.Count == 0)
            throw new PargsException($"{path}: the VADER lexicon has no entries.");
        return new VaderLexicon(valences);
    }

    /// <summary>
    /// Finds <see cref="RelativePath"/> by walking up from the application folder, then from the current
    /// folder (tests and <c>dotnet run</c> start deep inside bin/). Throws when neither has it.
    /// </summary>
    public static string FindDefaultPath() => ShippedData.Find(RelativePath);

    public static VaderLexicon LoadDefault() => Load(FindDefaultPath());
}
