namespace Pargs.Evaluation;

/// <summary>
/// Turns generation records into comparison rows, one per (method, w), in order of first appearance of the
/// method and ascending w. Per row: reward mean ± SE over its generations; win/tie/loss against the baseline
/// method, paired by prompt (<see cref="GenerationRecord.PromptKey"/>) after averaging each side's rewards
/// per prompt (several seeds per prompt count as one paired observation); ARGS diversity; coherence and
/// perplexity through the optional delegates; throughput.
/// </summary>
public static class MethodReport
{
    public static IReadOnlyList<MethodReportRow> Build(IEnumerable<GenerationRecord> records, MethodReportOptions options)
    {
        var all = records.ToList();
        CheckPairable(all);
        var rewards = all.Select(r => RewardOf(r, options)).ToList();
        var scored = all.Zip(rewards, (record, reward) => (Record: record, Reward: reward)).ToList();

        Dictionary<string, double>? baseline = null;
        if (options.Baseline != null)
        {
            var baselineRecords = scored.Where(s => s.Record.MethodName == options.Baseline).ToList();
            if (baselineRecords.Count == 0)
                throw new PargsException($"--baseline {options.Baseline}: that method has no generations (pass --baseline none for no comparison); methods present: " +
                    string.Join(", ", all.Select(r => r.MethodName).Distinct()) + ".");
            var settings = baselineRecords.Select(s => (s.Record.W, s.Record.K)).Distinct().ToList();
            if (settings.Count > 1)
                throw new PargsException($"baseline '{options.Baseline}': that method was run with several settings " +
                    $"({string.Join("; ", settings.Select(x => $"w = {x.W?.ToString() ?? "none"}, k = {x.K?.ToString() ?? "none"}"))}); the baseline must be one run");
            baseline = MeanPerPrompt(baselineRecords);
        }

        var methodOrder = all.Select(r => r.MethodName).Distinct().ToList();
        var rows = new List<MethodReportRow>();
        foreach (var group in scored
                     .GroupBy(s => (Method: s.Record.MethodName, s.Record.W))
                     .OrderBy(g => methodOrder.IndexOf(g.Key.Method))
                     .ThenBy(g => g.Key.W ?? double.NegativeInfinity))
        {
            var items = group.ToList();
            WinTieLoss? vsBaseline = null;
            if (baseline != null)
            {
                try { vsBaseline = WinRate.Compare(MeanPerPrompt(items), baseline, options.TieTolerance); }
                catch (PargsException e)
                {
                    throw new PargsException($"Method '{group.Key.Method}' (w = {group.Key.W?.ToString() ?? "none"}) " +
                        $"vs baseline '{options.Baseline}': {e.Message}", e);
                }
            }
            var pairs = items.Select(s => (s.Record.Instruction, s.Record.Output)).ToList();
            rows.Add(new MethodReportRow(
                group.Key.Method,
                group.Key.W,
                items.Count,
                MeanWithError.Of(items.Select(s => s.Reward)),
                vsBaseline,
                Diversity.Mean(items.Select(s => s.Record.Output)),
                CoherenceOf(items.Select(s => s.Record).ToList(), pairs, options),
                PerplexityOf(items.Select(s => s.Record).ToList(), pairs, options),
                Throughput.Of(items.Select(s => s.Record)))
            {
                // Only when every generation of the row carries both log-probabilities: a partial mean would be another row's.
                KlToBase = items.All(s => s.Record.KlToBase is not null) ? MeanWithError.Of(items.Select(s => s.Record.KlToBase!.Value)) : null,
            });
        }
        return rows;
    }

    /// <summary>
    /// Records are paired by prompt id and pooled by (method, w): both must mean one thing. A prompt id that stands
    /// for two different prompts (files generated from different prompt lists) would pair unrelated generations,
    /// and one (method, w) run with several k would pool different settings into one row.
    /// </summary>
    static void CheckPairable(IReadOnlyList<GenerationRecord> all)
    {
        foreach (var prompt in all.GroupBy(r => r.PromptKey))
            if (prompt.Select(r => r.Instruction).Distinct().Take(2).ToList() is [var a, var b])
                throw new PargsException($"prompt id '{prompt.Key}' stands for different prompts (\"{Short(a)}\" and \"{Short(b)}\"): " +
                    "these generations come from different prompt lists and cannot be paired; evaluate them separately");
        foreach (var run in all.GroupBy(r => (r.MethodName, r.W)))
            if (run.Select(r => r.K).Distinct().Take(2).ToList() is [var k1, var k2])
                throw new PargsException($"method '{run.Key.MethodName}' (w = {run.Key.W?.ToString() ?? "none"}) was run with different k ({k1}, {k2}), " +
                    "which one row cannot hold; evaluate those files separately");
        static string Short(string text) => text.Length <= 40 ? text : text[..40] + "…";
    }

    /// <summary>The records' own coherence when evaluation stored it in every one (a joined sharded evaluation), else the delegate's.</summary>
    static double CoherenceOf(IReadOnlyList<GenerationRecord> records, List<(string, string)> pairs, MethodReportOptions options)
    {
        if (records.Count > 0 && records.All(r => r.Coherence is not null))
            return Coherence.MeanOf(records.Select(r => r.Coherence!.Value));
        return options.Embed == null ? double.NaN : Coherence.Mean(pairs, options.Embed);
    }

    /// <summary>The records' own continuation log-probabilities when stored in every one, else the delegate's.</summary>
    static double PerplexityOf(IReadOnlyList<GenerationRecord> records, List<(string, string)> pairs, MethodReportOptions options)
    {
        if (records.Count > 0 && records.All(r => r.PerplexityLogProbs is not null))
            return Perplexity.FromLogProbs(records.SelectMany(r => r.PerplexityLogProbs!).ToList());
        return options.ContinuationLogProbs == null ? double.NaN : Perplexity.OfTexts(pairs, options.ContinuationLogProbs);
    }

    private static double RewardOf(GenerationRecord record, MethodReportOptions options)
    {
        if (options.Reward != null) return options.Reward(record.Instruction, record.Output);
        return record.Reward ?? throw new PargsException(
            $"Generation for prompt '{record.PromptKey}' of method '{record.MethodName}' has no 'reward' and " +
            "no evaluation reward was given.");
    }

    private static Dictionary<string, double> MeanPerPrompt(IEnumerable<(GenerationRecord Record, double Reward)> items) =>
        items.GroupBy(s => s.Record.PromptKey).ToDictionary(g => g.Key, g => g.Average(s => s.Reward));
}
