using System.Text.Json.Nodes;
using Pargs.Evaluation;
using Pargs.Rewards.Gold;

namespace Pargs.Tests.Evaluation;

public sealed class MethodReportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pargs-report-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static GenerationRecord Gen(string method, double? w, string prompt, double reward, string output = "a b c d e",
        int tokens = 5, double seconds = 1) =>
        new() { Method = method, W = w, PromptId = prompt, Instruction = "prompt " + prompt, Output = output,
                Reward = reward, Tokens = tokens, Seconds = seconds };

    private static List<GenerationRecord> Records() => new()
    {
        Gen("topk", null, "p1", 0.1), Gen("topk", null, "p2", 0.5), Gen("topk", null, "p3", 0.3),
        Gen("pargs", 2, "p1", 0.4), Gen("pargs", 2, "p2", 0.5), Gen("pargs", 2, "p3", 0.2, tokens: 15, seconds: 2),
        Gen("pargs", 1, "p1", 0.2, output: "a a a a"), Gen("pargs", 1, "p2", 0.6), Gen("pargs", 1, "p3", 0.3),
    };

    [Fact]
    public void KlToTheBaseLmIsTheMeanOfLogPiMinusLogPBaseOnlyWhenEverySampleHasBoth()
    {
        var records = new List<GenerationRecord>
        {
            Gen("topk", null, "p1", 0.1) with { PolicyLogProb = -3, BaseLogProb = -4 },
            Gen("topk", null, "p2", 0.2) with { PolicyLogProb = -2, BaseLogProb = -5 },
            Gen("args", 1, "p1", 0.3), Gen("args", 1, "p2", 0.4),
            Gen("pargs", 1, "p1", 0.3) with { PolicyLogProb = -1, BaseLogProb = -2 }, Gen("pargs", 1, "p2", 0.4), // one sample without: no KL
        };
        var rows = MethodReport.Build(records, new MethodReportOptions());
        Assert.Equal(2.0, rows[0].KlToBase!.Mean, 12);                // (1 + 3) / 2
        Assert.Equal(1.0, rows[0].KlToBase!.StandardError, 12);       // SD √2, n = 2
        Assert.Null(rows[1].KlToBase);
        Assert.Null(rows[2].KlToBase);
        var table = ReportWriter.ToMarkdown(rows);
        Assert.Contains("| ppl | KL (nats) | tok/s |", table);
        Assert.Contains("| 2.00 ± 1.00 |", table);
        Assert.DoesNotContain("KL", ReportWriter.ToMarkdown(rows.Skip(1).ToList())); // no policy row: the old columns
        var json = ReportWriter.ToJson(rows);
        Assert.Equal(2.0, json["rows"]![0]!["kl_mean"]!.GetValue<double>(), 12);
        Assert.Null(json["rows"]![1]!["kl_mean"]);
    }

    [Fact]
    public void BuildsOneRowPerMethodAndWeight()
    {
        var rows = MethodReport.Build(Records(), new MethodReportOptions { Baseline = "topk" });
        Assert.Equal(new[] { ("topk", (double?)null), ("pargs", 1.0), ("pargs", 2.0) }, rows.Select(r => (r.Method, r.W)));

        var topk = rows[0];
        Assert.Equal(new WinTieLoss(0, 3, 0), topk.VsBaseline);
        Assert.Equal(0.3, topk.Reward.Mean, 12);
        Assert.Equal(0.2, topk.Reward.StandardDeviation, 12);             // deviations -0.2, 0.2, 0
        Assert.Equal(0.2 / Math.Sqrt(3), topk.Reward.StandardError, 12);

        var pargs1 = rows[1];                                              // vs 0.1/0.5/0.3: 0.2 win, 0.6 win, 0.3 tie
        Assert.Equal(new WinTieLoss(2, 1, 0), pargs1.VsBaseline);
        Assert.Equal((1.0 / 24 + 0.4 + 0.4) / 3, pargs1.Diversity, 12);

        var pargs2 = rows[2];                                              // 0.4 win, 0.5 tie, 0.2 loss
        Assert.Equal(new WinTieLoss(1, 1, 1), pargs2.VsBaseline);
        Assert.Equal(25.0 / 4.0, pargs2.Throughput.TokensPerSecond, 12);
        Assert.Equal(4.0 / 3.0, pargs2.Throughput.SecondsPerSample, 12);
        Assert.True(double.IsNaN(pargs2.Coherence) && double.IsNaN(pargs2.Perplexity));
    }

    [Fact]
    public void GoldRewardAndDelegatesAreUsed()
    {
        var gold = LexiconSentiment.Positive(VaderLexicon.LoadDefault());
        var records = new List<GenerationRecord>
        {
            Gen("topk", null, "p1", 0, output: "the day was bad"), Gen("pargs", 1, "p1", 0, output: "the day was good"),
        };
        var options = MethodReportOptions.WithGoldReward(gold, baseline: "topk") with
        {
            Embed = s => s.StartsWith("prompt") ? new float[] { 1, 0 } : new float[] { 1, 1 },
            ContinuationLogProbs = (_, c) => new[] { Math.Log(0.5), Math.Log(0.5) },
        };
        var rows = MethodReport.Build(records, options);
        Assert.Equal(gold.Compound("the day was good"), rows[1].Reward.Mean, 12);
        Assert.Equal(new WinTieLoss(1, 0, 0), rows[1].VsBaseline);
        Assert.Equal(Math.Sqrt(0.5), rows[1].Coherence, 6);
        Assert.Equal(2.0, rows[1].Perplexity, 10);
    }

    [Fact]
    public void MissingBaselineOrPromptsAreClearErrors()
    {
        var e = Assert.Throws<PargsException>(() => MethodReport.Build(Records(), new MethodReportOptions { Baseline = "argmax" }));
        Assert.Contains("argmax", e.Message);
        var records = Records();
        records.RemoveAt(records.Count - 1);                              // pargs w=1 lacks p3
        e = Assert.Throws<PargsException>(() => MethodReport.Build(records, new MethodReportOptions { Baseline = "topk" }));
        Assert.Contains("pargs", e.Message);
        Assert.Contains("'p3'", e.Message);
        var unscored = new[] { new GenerationRecord { Method = "m", Instruction = "x", Output = "y" } };
        Assert.Throws<PargsException>(() => MethodReport.Build(unscored, new MethodReportOptions()));
    }

    [Fact]
    public void MarkdownAndJsonContainTheRows()
    {
        var rows = MethodReport.Build(Records(), new MethodReportOptions { Baseline = "topk" });
        var markdown = ReportWriter.ToMarkdown(rows, "topk");
        Assert.Contains("| method | w | n | reward (mean ± SE) | win/tie/loss vs topk |", markdown);
        Assert.Contains("| topk | – | 3 | 0.300 ± 0.115 | 0/3/0 | 100.0% |", markdown);
        Assert.Contains("| pargs | 1 | 3 | 0.367 ± 0.120 | 2/1/0 | 100.0% |", markdown);
        Assert.Contains("| pargs | 2 | 3 | 0.367 ± 0.088 | 1/1/1 | 66.7% |", markdown);
        Assert.Equal(5, markdown.Trim().Split('\n').Length);

        var md = Path.Combine(_dir, "report.md");
        var json = Path.Combine(_dir, "report.json");
        ReportWriter.WriteMarkdown(md, rows, "topk", title: "Sentiment");
        ReportWriter.WriteJson(json, rows, "topk", "vader-positive");
        Assert.StartsWith("# Sentiment", File.ReadAllText(md));
        var parsed = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal("vader-positive", (string?)parsed["reward"]);
        var jsonRows = parsed["rows"]!.AsArray();
        Assert.Equal(3, jsonRows.Count);
        Assert.Equal(2.0, (double)jsonRows[2]!["w"]!);
        Assert.Equal(1, (int)jsonRows[2]!["losses"]!);
        Assert.Null(jsonRows[2]!["coherence"]);                           // NaN → null
        Assert.Equal(0.2 / Math.Sqrt(3), (double)jsonRows[0]!["reward_se"]!, 12);
    }

    [Fact]
    public void Generations_that_cannot_be_paired_or_pooled_are_errors()
    {
        // The same prompt id for two different prompts: files from different prompt lists.
        var mixed = Records().Append(Gen("args", 1, "p1", 0.5) with { Instruction = "another prompt" });
        Assert.Contains("stands for different prompts", Assert.Throws<PargsException>(() => MethodReport.Build(mixed, new MethodReportOptions())).Message);
        // One (method, w) row from runs with different k.
        var ks = Records().Select((r, i) => r.Method == "topk" ? r with { K = i == 0 ? 2 : 50 } : r);
        Assert.Contains("different k", Assert.Throws<PargsException>(() => MethodReport.Build(ks, new MethodReportOptions())).Message);
        // A baseline that is several runs (pargs at w = 1 and 2).
        Assert.Contains("several settings", Assert.Throws<PargsException>(() => MethodReport.Build(Records(), new MethodReportOptions { Baseline = "pargs" })).Message);
    }
}
