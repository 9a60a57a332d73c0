using Pargs.Evaluation;
using Pargs.Rewards.Gold;

namespace Pargs.Experiments;

/// <summary>What <see cref="GenerationEvaluator.Run"/> wrote (full paths) and the table rows.</summary>
public sealed record EvaluationOutputs(
    IReadOnlyList<MethodReportRow> Rows, string TableMarkdown, string Json, string ScoredGenerations,
    (string Png, string Svg) RewardVsW, (string Png, string Svg) RewardVsPerplexity, string Frontier)
{
    /// <summary>The written files relative to <paramref name="dir"/> (for a stage manifest).</summary>
    public IReadOnlyList<string> FilesRelativeTo(string dir) =>
        new[] { TableMarkdown, Json, ScoredGenerations, RewardVsW.Png, RewardVsW.Svg, RewardVsPerplexity.Png, RewardVsPerplexity.Svg, Frontier }
            .Select(f => Path.GetRelativePath(dir, f)).ToList();
}

/// <summary>
/// Stage 5 of the demo, also `pargs eval`: scores every generation with the gold reward (which guided nothing),
/// builds the comparison table (one row per method and w, win/tie/loss against a baseline method, diversity,
/// coherence and perplexity under the base LM when a <see cref="BaseLmProbe"/> is given) and writes
/// <c>table.md</c>, <c>report.json</c>, <c>generations.scored.jsonl</c> and the plots
/// <c>reward-vs-w</c> and <c>reward-vs-perplexity</c> (.png and .svg) and the reward–KL frontier <c>frontier.png</c>
/// (<see cref="Plots.Frontier"/>) into <paramref name="outDir"/>.
/// </summary>
public static class GenerationEvaluator
{
    public static EvaluationOutputs Run(IReadOnlyList<GenerationRecord> records, IGoldReward gold, string? baseline, BaseLmProbe? probe,
        string outDir, IProgress<(int Done, int Total)>? progress = null)
    {
        if (records.Count == 0) throw new PargsException("there are no generations to evaluate");
        var scored = Score(records, gold, probe, progress);
        return Report(scored, gold.Name, baseline, outDir);
    }

    /// <summary>
    /// Each record scored on its own: the gold reward, and with a base LM its continuation's log-probabilities (for
    /// perplexity) and its prompt–continuation coherence — everything a table needs that costs a model's forward, so
    /// that an evaluation can be split over machines (`eval --shard`) and joined (`eval --join`) into the same table.
    /// </summary>
    public static List<GenerationRecord> Score(IReadOnlyList<GenerationRecord> records, IGoldReward gold, BaseLmProbe? probe,
        IProgress<(int Done, int Total)>? progress = null)
    {
        var scored = new List<GenerationRecord>(records.Count);
        foreach (var r in records)
        {
            var record = r with { Reward = gold.Score(r.Instruction, r.Output) };
            if (probe is not null)
                record = record with
                {
                    PerplexityLogProbs = probe.ContinuationLogProbs(r.Instruction, r.Output).ToArray(),
                    Coherence = Coherence.Cosine(probe.Embed(r.Instruction), probe.Embed(r.Output)),
                };
            scored.Add(record);
            progress?.Report((scored.Count, records.Count));
        }
        return scored;
    }

    /// <summary>The table, JSON, scored generations and plots from records <see cref="Score"/> has scored; no model needed.</summary>
    public static EvaluationOutputs Report(IReadOnlyList<GenerationRecord> scored, string goldName, string? baseline, string outDir)
    {
        if (scored.Count == 0) throw new PargsException("there are no generations to evaluate");
        var scoredPath = Path.Combine(outDir, "generations.scored.jsonl");
        // Rewards, perplexity and coherence are read from the records (Reward = null: each record's own).
        var rows = MethodReport.Build(scored, new MethodReportOptions { Baseline = baseline });

        // Written only once everything is computed (a missing baseline fails above): a failed run leaves no output.
        Directory.CreateDirectory(outDir);
        GenerationJsonl.Write(scoredPath, scored);
        var table = Path.Combine(outDir, "table.md");
        var json = Path.Combine(outDir, "report.json");
        ReportWriter.WriteMarkdown(table, rows, baseline);
        ReportWriter.WriteJson(json, rows, baseline, goldName);
        string label = $"gold reward ({goldName})";
        var byW = Plots.RewardVsW(Path.Combine(outDir, "reward-vs-w"), rows, label);
        var byPpl = Plots.RewardVsPerplexity(Path.Combine(outDir, "reward-vs-perplexity"), rows, label);
        var frontier = Plots.Frontier(Path.Combine(outDir, "frontier"), rows, label);
        return new EvaluationOutputs(rows, table, json, scoredPath, byW, byPpl, frontier);
    }
}
