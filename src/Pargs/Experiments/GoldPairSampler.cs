using System.Text;
using System.Text.Json;
using Pargs.Data;
using Pargs.Decoding;
using Pargs.Models;
using Pargs.Rewards.Gold;

namespace Pargs.Experiments;

/// <summary>One sampled pair with its gold scores and the Bradley–Terry label draw.</summary>
public sealed record GoldLabelledPair(string Prompt, string Chosen, string Rejected, double ChosenGold, double RejectedGold, double ChosenProbability)
{
    public PreferencePair ToPreferencePair() => new(Prompt, Chosen, Rejected);
}

/// <summary>
/// The "gold reward model" protocol for preference data: for each prompt, draw two continuations from the base LM
/// (top-k sampling, seeded), score both with the gold reward g, and label with a Bradley–Terry draw
/// P(a preferred over b) = σ((g_a − g_b) / τ). The learned reward models see only these noisy labels, never g.
/// </summary>
public static class GoldPairSampler
{
    public sealed record Settings(int PairsPerPrompt, int TopK, int MaxNewTokens, double LabelTemperature, bool DropTies, int Seed, int BatchSize);

    public static IReadOnlyList<GoldLabelledPair> Sample(CausalLM lm, IGoldReward gold, IReadOnlyList<string> prompts, Settings s,
        IProgress<(int Done, int Total)>? progress = null)
    {
        // Each prompt appears 2 × PairsPerPrompt times; the generator gives every row (prompt index) its own random
        // stream, so the copies are independent samples.
        int perPrompt = 2 * s.PairsPerPrompt;
        var expanded = prompts.SelectMany(p => Enumerable.Repeat(p, perPrompt)).ToList();
        var options = new DecodingOptions
        {
            Method = new Decoding.Methods.TopKOptions { K = s.TopK }, MaxNewTokens = s.MaxNewTokens, Seed = s.Seed, BatchSize = s.BatchSize,
        };
        var samples = TextGenerator.Generate(lm, null, expanded, options,
            progress is null ? null : new InlineProgress<int>(done => progress.Report((done, expanded.Count))));

        var labelRandom = new Random(s.Seed);
        var pairs = new List<GoldLabelledPair>();
        for (int i = 0; i + 1 < samples.Count; i += 2)
        {
            string prompt = expanded[i], a = samples[i].Output, b = samples[i + 1].Output;
            if (a.Trim().Length == 0 || b.Trim().Length == 0) continue; // an immediate EOS: nothing to compare
            double ga = gold.Score(prompt, a), gb = gold.Score(prompt, b);
            double pA = PreferenceProbability(ga, gb, s.LabelTemperature);
            double u = labelRandom.NextDouble(); // drawn for every pair so dropping ties does not shift later draws
            if (s.DropTies && ga == gb) continue;
            bool aWins = u < pA;
            pairs.Add(aWins ? new GoldLabelledPair(prompt, a, b, ga, gb, pA) : new GoldLabelledPair(prompt, b, a, gb, ga, 1 - pA));
        }
        return pairs;
    }

    /// <summary>Bradley–Terry: σ((g_a − g_b) / τ).</summary>
    public static double PreferenceProbability(double goldA, double goldB, double temperature)
        => 1.0 / (1.0 + Math.Exp(-(goldA - goldB) / temperature));

    /// <summary>
    /// TRL's explicit format, one pair per line: <c>{"prompt","chosen","rejected"}</c>, plus <c>chosen_gold</c>,
    /// <c>rejected_gold</c> and <c>p_chosen</c> so a reader can see why each label was drawn (readers ignore them).
    /// </summary>
    public static void WriteJsonl(string path, IEnumerable<GoldLabelledPair> pairs)
    {
        Pargs.IO.AtomicFile.WriteText(path, writer =>
        {
            var json = new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            foreach (var p in pairs)
            {
                writer.Write(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["prompt"] = p.Prompt, ["chosen"] = p.Chosen, ["rejected"] = p.Rejected,
                    ["chosen_gold"] = Math.Round(p.ChosenGold, 6), ["rejected_gold"] = Math.Round(p.RejectedGold, 6),
                    ["p_chosen"] = Math.Round(p.ChosenProbability, 6),
                }, json));
                writer.Write('\n');
            }
        });
    }
}
