using System.Globalization;
using System.Text.Json.Nodes;

namespace Pargs.Experiments;

/// <summary>What <see cref="PublishedResults.Compare"/> found: rows identical to the printed digit, rows that differ
/// within the cross-machine tolerance, and differences beyond it (rows missing on either side included); rows beyond the
/// main run's tolerance that another machine's published run reproduces are listed in <see cref="OtherMachine"/>.</summary>
public sealed record PublishedComparison(int Identical, IReadOnlyList<string> WithinTolerance, IReadOnlyList<string> Beyond)
{
    /// <summary>Rows identical to, or within the tolerance of, another machine's published run of the same row (and which).</summary>
    public IReadOnlyList<string> OtherMachine { get; init; } = [];

    public bool Reproduced => Beyond.Count == 0;
}

/// <summary>
/// Checks a run's comparison table (<c>evaluate/report.json</c>) against a published one (docs/results/seed1.json), as
/// `pargs demo --check FILE` does. A row is IDENTICAL when every number the page prints agrees to its printed digits
/// (reward and its SE, diversity, coherence to 3 decimals, perplexity and KL to 2, n and win/tie/loss exactly; speed
/// is not compared) — what a rerun on the same processor gives. Otherwise it must be WITHIN TOLERANCE: mean gold
/// reward within ±<see cref="RewardTolerance"/> and perplexity within ±<see cref="PerplexityRelativeTolerance"/>.
/// <para>WHY a tolerance, and for every row: torch's CPU kernels (BLAS, vectorised reductions) sum in an order that
/// depends on the processor's instruction set, so a model trained on another CPU (the reward models, FaRMA's and
/// GenARM's, the DPO policy) differs in its last bits; once that flips one drawn or argmax token, the rest of that
/// sample is a fresh draw, and its row moves by an amount of the order of its standard error, not of a rounding
/// error. Seen (docs/results.md): the DPO row 0.939 → 0.940 and perplexity 11.00 → 10.82, and ARGS at w = 2 perplexity
/// 5.95 → 5.90, between an AMD EPYC and an Intel Xeon VM; every other row identical.</para>
/// <para>WHY other machines' runs: PPO's policy is trained on its own samples, so once a rounding difference flips one
/// sampled token the training data itself differs and the trained policy ends elsewhere — deterministically on each
/// machine, but not within a row's tolerance across them (seed 1: 0.966 on the Intel Xeon VM that published the table,
/// 0.910 on the AMD EPYC, the same in two AMD runs). The published file may therefore carry whole runs of the same
/// command on other processors (<c>"other_machines"</c>); rows beyond the main run's tolerance still reproduce when every
/// one of them is identical to, or within the tolerance of, the same row of ONE of those runs (rows matching one machine
/// here and another there are no machine's run), and the report names which.</para>
/// </summary>
public static class PublishedResults
{
    /// <summary>|Δ mean gold reward| allowed for a row that is not identical (≈ 3 standard errors of a row of 80 samples).</summary>
    public const double RewardTolerance = 0.03;
    /// <summary>|Δ perplexity| / published perplexity allowed for a row that is not identical.</summary>
    public const double PerplexityRelativeTolerance = 0.10;

    public static PublishedComparison Compare(string runJson, string publishedJson, string publishedName = "the published table")
    {
        var run = Rows(runJson, "this run's report.json");
        var (published, otherRuns) = PublishedRuns(publishedJson, publishedName);
        var beyond = new List<string>();
        var within = new List<string>();
        var otherMachine = new List<string>();
        int identical = 0;
        foreach (var key in published.Keys.Except(run.Keys)) beyond.Add($"{key}: in {publishedName} but not in this run");
        foreach (var key in run.Keys.Except(published.Keys)) beyond.Add($"{key}: in this run but not in {publishedName}");
        var farKeys = new List<(string Key, List<string> Differences)>();
        foreach (var key in published.Keys.Intersect(run.Keys))
        {
            var differences = Differences(run[key], published[key]);
            if (differences.Count == 0) { identical++; continue; }
            if (Close(run[key], published[key])) { within.Add($"{key}: {string.Join(", ", differences)}"); continue; }
            farKeys.Add((key, differences));
        }
        // Rows beyond the main run's tolerance may still be another machine's run (see the class summary) — but ONE machine's
        // for all of them: a run matching one machine in some rows and another in others is neither machine's run.
        // Among the machines that hold every such row, the one with the most identical rows is named.
        bool Holds(Dictionary<string, JsonObject> rows, string key) => rows.TryGetValue(key, out var row) && (Differences(run[key], row).Count == 0 || Close(run[key], row));
        var machine = farKeys.Count == 0 ? default : otherRuns
            .Where(o => farKeys.All(f => Holds(o.Rows, f.Key)))
            .OrderByDescending(o => farKeys.Count(f => Differences(run[f.Key], o.Rows[f.Key]).Count == 0))
            .FirstOrDefault();
        foreach (var (key, differences) in farKeys)
        {
            if (machine.Machine is null) { beyond.Add($"{key}: {string.Join(", ", differences)}"); continue; }
            var otherDifferences = Differences(run[key], machine.Rows[key]);
            otherMachine.Add(otherDifferences.Count == 0
                ? $"{key}: identical to {machine.Machine}'s run ({string.Join(", ", differences)} against the main run)"
                : $"{key}: within the tolerance of {machine.Machine}'s run ({string.Join(", ", otherDifferences)})");
        }
        return new PublishedComparison(identical, within, beyond) { OtherMachine = otherMachine };
    }

    /// <summary>The printed numbers of <paramref name="a"/> that differ from <paramref name="b"/>'s at the page's digits.</summary>
    static List<string> Differences(JsonObject a, JsonObject b)
    {
        var differences = new List<string>();
        foreach (var (field, digits) in new[] { ("reward_mean", 3), ("reward_se", 3), ("diversity", 3), ("coherence", 3), ("perplexity", 2), ("kl_mean", 2), ("n", 0), ("wins", 0), ("ties", 0), ("losses", 0) })
            if (Text(a, field, digits) != Text(b, field, digits))
                differences.Add($"{field} {Text(a, field, digits)} vs {Text(b, field, digits)}");
        return differences;
    }

    static bool Close(JsonObject a, JsonObject b)
    {
        double dr = Math.Abs(Number(a, "reward_mean") - Number(b, "reward_mean"));
        double dp = Math.Abs(Number(a, "perplexity") - Number(b, "perplexity")) / Number(b, "perplexity");
        return dr <= RewardTolerance && (dp <= PerplexityRelativeTolerance || double.IsNaN(Number(b, "perplexity")) && double.IsNaN(Number(a, "perplexity")))
            && Text(a, "n", 0) == Text(b, "n", 0);
    }

    /// <summary>The published run's rows, and the rows of each run in its <c>"other_machines"</c> array ({"machine", "rows"}).</summary>
    static (Dictionary<string, JsonObject> Rows, List<(string Machine, Dictionary<string, JsonObject> Rows)> Others) PublishedRuns(string json, string name)
    {
        var rows = Rows(json, name);
        var others = new List<(string, Dictionary<string, JsonObject>)>();
        if (JsonNode.Parse(json)?["other_machines"] is JsonNode node)
        {
            if (node is not JsonArray runs) throw new PargsException($"{name}: \"other_machines\" is not an array");
            foreach (var run in runs)
            {
                if (run is not JsonObject o || o["machine"] is not JsonValue machine || machine.GetValueKind() != System.Text.Json.JsonValueKind.String)
                    throw new PargsException($"{name}: every entry of \"other_machines\" needs a \"machine\" string and a \"rows\" array");
                others.Add((machine.GetValue<string>(), Rows(o.ToJsonString(), $"{name} ({machine.GetValue<string>()})")));
            }
        }
        return (rows, others);
    }

    static Dictionary<string, JsonObject> Rows(string json, string name)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json); }
        catch (System.Text.Json.JsonException e) { throw new PargsException($"{name}: not valid JSON ({e.Message})"); }
        if (root?["rows"] is not JsonArray rows) throw new PargsException($"{name}: no \"rows\" array (expected an evaluate/report.json)");
        var byKey = new Dictionary<string, JsonObject>();
        foreach (var row in rows.OfType<JsonObject>())
        {
            string key = $"{Method(row)} w={(row["w"] is { } w ? w.GetValue<double>().ToString("0.###", CultureInfo.InvariantCulture) : "–")}";
            if (!byKey.TryAdd(key, row)) throw new PargsException($"{name}: row {key} appears twice");
        }
        return byKey;
    }

    static string Method(JsonObject row) => row["method"]?.GetValue<string>() ?? "";
    static double Number(JsonObject row, string field) => row[field] is { } v ? v.GetValue<double>() : double.NaN;
    static string Text(JsonObject row, string field, int digits) => row[field] is { } v
        ? Math.Round(v.GetValue<double>(), digits, MidpointRounding.AwayFromZero).ToString("F" + digits, CultureInfo.InvariantCulture)
        : "–";
}
