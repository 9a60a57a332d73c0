using Pargs.Decoding;
using Pargs.Evaluation;
using Pargs.Experiments;
using Pargs.Models;
using Pargs.Rewards.Gold;

namespace Pargs.Tests.Experiments;

/// <summary>
/// Issue 18's "same for eval": `eval --shard i/n` scores a slice of the records into its own folder and `eval --join`
/// builds the table from the n folders with no model loaded — the same scored generations, table and JSON, byte for byte,
/// as one unsharded evaluation.
/// </summary>
public class EvaluationShardsTests
{
    static List<GenerationRecord> Records()
    {
        string[] prompts = ["Once upon a time", "Tim was sad", "The dog ran", "Lily saw a cat", "The sun was hot"];
        string[] outputs = [" there was a happy girl.", " and cried all day.", " to the park with joy.", " and she was scared.", " so they swam. It was fun!"];
        var records = new List<GenerationRecord>();
        foreach (var (method, w, shift) in new[] { ("topk", (double?)null, 0), ("pargs", 1.0, 1), ("pargs", 2.0, 2) })
            for (int i = 0; i < prompts.Length; i++)
                records.Add(new GenerationRecord
                {
                    Instruction = prompts[i], Output = outputs[(i + shift) % outputs.Length], Generator = "stories260K+" + method,
                    PromptId = i.ToString(), Method = method, K = 10, W = w, Seed = 1, Tokens = 8, Seconds = 0.01 * (i + 1),
                });
        return records;
    }

    [Fact]
    public void Joined_shards_write_the_unsharded_evaluation_byte_for_byte()
    {
        using var dir = new TempDir();
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        var gold = LexiconSentiment.Positive(VaderLexicon.LoadDefault());
        var records = Records();

        string whole = dir.File("whole");
        GenerationEvaluator.Run(records, gold, "topk", new BaseLmProbe(lm), whole);
        var folders = Enumerable.Range(0, 4).Select(i =>
        {
            string folder = dir.File($"shard{i}");
            EvaluationShards.WriteShard(records, new PromptShard(i, 4), gold, new BaseLmProbe(lm), lm.Source, folder);
            return folder;
        }).ToList();
        var (scored, goldName) = EvaluationShards.Join([folders[2], folders[0], folders[3], folders[1]]);
        string joined = dir.File("joined");
        GenerationEvaluator.Report(scored, goldName, "topk", joined);

        foreach (var file in new[] { "generations.scored.jsonl", "table.md", "report.json" })
            Assert.Equal(File.ReadAllText(Path.Combine(whole, file)), File.ReadAllText(Path.Combine(joined, file)));
        var table = File.ReadAllText(Path.Combine(whole, "table.md"));
        Assert.DoesNotContain("NaN", table); // perplexity and coherence were measured, not left out
        Assert.Contains("\"perplexity_logprobs\"", File.ReadAllText(Path.Combine(whole, "generations.scored.jsonl")));
    }

    [Fact]
    public void Join_refuses_missing_repeated_and_foreign_shards()
    {
        using var dir = new TempDir();
        var gold = LexiconSentiment.Positive(VaderLexicon.LoadDefault());
        var records = Records();
        string Shard(int i, int n, IReadOnlyList<GenerationRecord> of, string name)
        {
            string folder = dir.File(name);
            EvaluationShards.WriteShard(of, new PromptShard(i, n), gold, null, null, folder);
            return folder;
        }
        var a = Shard(0, 3, records, "a");
        var b = Shard(1, 3, records, "b");
        var c = Shard(2, 3, records, "c");
        var foreign = Shard(2, 3, records.Take(12).ToList(), "foreign");
        Assert.Equal(records.Count, EvaluationShards.Join([a, b, c]).Scored.Count);
        Assert.Contains("2/3 are missing", Assert.Throws<PargsException>(() => EvaluationShards.Join([a, b])).Message);
        Assert.Contains("given twice", Assert.Throws<PargsException>(() => EvaluationShards.Join([a, b, b])).Message);
        Assert.Contains("another evaluation", Assert.Throws<PargsException>(() => EvaluationShards.Join([a, b, foreign])).Message);
        Assert.Contains("not a folder `eval --shard` wrote", Assert.Throws<PargsException>(() => EvaluationShards.Join([dir.Path])).Message);
    }
}
