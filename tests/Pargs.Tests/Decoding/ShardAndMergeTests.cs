using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Evaluation;
using Pargs.Models;
using Pargs.Tests.Cli;

namespace Pargs.Tests.Decoding;

/// <summary>
/// Issue 18's batch jobs across machines: `generate --shard i/n` decodes the i-th of n slices, `pargs merge` joins the
/// slices, and the merged file is byte for byte the unsharded run's (records written with --no-timings).
/// </summary>
public class ShardAndMergeTests
{
    [Theory]
    [InlineData("0/4", 0, 4)]
    [InlineData(" 3 / 4 ", 3, 4)]
    [InlineData("0/1", 0, 1)]
    public void Shards_parse(string text, int index, int count) => Assert.Equal(new PromptShard(index, count), PromptShard.Parse(text));

    [Theory]
    [InlineData("4/4", "below n")]
    [InlineData("1/0", "between 1 and")]
    [InlineData("-1/4", "expected i/n")]
    [InlineData("1", "expected i/n")]
    [InlineData("a/b", "expected i/n")]
    [InlineData("1/4/5", "expected i/n")]
    [InlineData("0/1000000", "between 1 and")]
    public void Bad_shards_are_refused_naming_the_option(string text, string expected)
    {
        var e = Assert.Throws<PargsException>(() => PromptShard.Parse(text));
        Assert.Contains("--shard", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Slices_are_whole_batches_that_cover_the_list_once_in_order()
    {
        foreach (int prompts in new[] { 0, 1, 5, 8, 9, 23, 100 })
            foreach (int batch in new[] { 1, 2, 8 })
                foreach (int n in new[] { 1, 2, 3, 7, 40 })
                {
                    int next = 0;
                    for (int i = 0; i < n; i++)
                    {
                        var (start, length) = new PromptShard(i, n).Slice(prompts, batch);
                        Assert.Equal(next, start);
                        Assert.True(length >= 0);
                        Assert.True(start % batch == 0 || length == 0, $"{prompts} prompts, batch {batch}, shard {i}/{n} starts inside a batch");
                        next = start + length;
                    }
                    Assert.Equal(prompts, next);
                    // Even split: shard sizes differ by at most one batch.
                    var sizes = Enumerable.Range(0, n).Select(i => new PromptShard(i, n).Slice(prompts, batch).Length).ToArray();
                    Assert.True(sizes.Max() - sizes.Min() <= batch, string.Join(",", sizes));
                }
    }

    static readonly string[] Prompts = ["Once upon a time", "Tim was sad", "The dog ran", "A big tree", "Lily saw a cat", "The sun was hot", "Sam had a ball"];

    [Fact]
    public void Merged_shards_equal_the_unsharded_run_byte_for_byte()
    {
        using var dir = new TempDir();
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        var options = new DecodingOptions { Method = new TopKOptions { K = 10 }, Seed = 5, MaxNewTokens = 12, BatchSize = 2 };
        GenerationJobSettings Job(string path, PromptShard shard) => new()
        {
            OutPath = path, Generator = "stories260K+topk", Fingerprint = GenerationJob.Fingerprint([shard.ToString(), .. Prompts]), Shard = shard, Timings = false,
        };
        string whole = dir.File("whole.jsonl");
        GenerationJob.Run(Engines.For(lm, DecodingEngine.Cached), null, Prompts, options, Job(whole, PromptShard.Whole));
        var shards = Enumerable.Range(0, 3).Select(i =>
        {
            string path = dir.File($"shard{i}.jsonl");
            GenerationJob.Run(Engines.For(lm, DecodingEngine.Cached), null, Prompts, options, Job(path, new PromptShard(i, 3)));
            return path;
        }).ToArray();
        Assert.Equal(3, File.ReadAllLines(dir.File("shard2.jsonl")).Length); // 4 batches of 2 over 3 shards: {0,1} | {2,3} | {4,5} {6}
        var merged = GenerationMerge.Merge(shards.Reverse().ToArray());
        Assert.Equal(File.ReadAllText(whole), string.Concat(merged.Select(l => l + "\n")));
        Assert.DoesNotContain("\"seconds\"", File.ReadAllText(whole));
    }

    [Fact]
    public void Merge_refuses_gaps_overlaps_and_slices_of_different_jobs()
    {
        using var dir = new TempDir();
        string Line(int id, int seed = 1) => $$"""{"instruction":"p{{id}}","output":"o","generator":"g","prompt_id":"{{id}}","method":"topk","k":10,"w":null,"seed":{{seed}},"reward":null,"tokens":1}""";
        string Write(string name, params string[] lines) { string p = dir.File(name); File.WriteAllLines(p, lines); return p; }
        var a = Write("a.jsonl", Line(0), Line(1));
        var b = Write("b.jsonl", Line(2), Line(3));
        var gap = Write("gap.jsonl", Line(3), Line(4));
        var overlap = Write("overlap.jsonl", Line(1), Line(2));
        var otherSeed = Write("seed.jsonl", Line(2, seed: 9), Line(3, seed: 9));
        var unordered = Write("unordered.jsonl", Line(3), Line(2));

        Assert.Equal(4, GenerationMerge.Merge([b, a]).Count);
        Assert.Contains("no row for prompt 2", Assert.Throws<PargsException>(() => GenerationMerge.Merge([a, gap])).Message);
        Assert.Contains("also in", Assert.Throws<PargsException>(() => GenerationMerge.Merge([a, overlap])).Message);
        Assert.Contains("seed differs", Assert.Throws<PargsException>(() => GenerationMerge.Merge([a, otherSeed])).Message);
        Assert.Contains("follows 3", Assert.Throws<PargsException>(() => GenerationMerge.Merge([a, unordered])).Message);
        Assert.Contains("--expect-rows says 6", Assert.Throws<PargsException>(() => GenerationMerge.Merge([a, b], expectRows: 6)).Message);
        Assert.Contains("given twice", Assert.Throws<PargsException>(() => GenerationMerge.Merge([a, a])).Message);
    }

    [Fact]
    public void Generate_shards_and_merge_through_the_cli_equal_the_unsharded_run()
    {
        using var dir = new TempDir();
        string prompts = dir.File("prompts.txt");
        File.WriteAllLines(prompts, Prompts);
        string[] Args(string output, params string[] more) => ["generate", "--prompts", prompts, "-o", output, // the shipped stories260K and its partial RM
            "--method", "pargs", "-k", "5", "--seed", "2", "--max-new-tokens", "10", "--batch-size", "3", "--no-timings", "--threads", "1", .. more];
        PargsCli.Succeeds(Args(dir.File("whole.jsonl")));
        PargsCli.Succeeds(Args(dir.File("s0.jsonl"), "--shard", "0/2"));
        var s1 = PargsCli.Succeeds(Args(dir.File("s1.jsonl"), "--shard", "1/2"));
        Assert.Contains("shard 1/2", s1.Stdout);
        PargsCli.Succeeds("merge", dir.File("s1.jsonl"), dir.File("s0.jsonl"), "-o", dir.File("merged.jsonl"), "--expect-rows", "7");
        Assert.Equal(File.ReadAllBytes(dir.File("whole.jsonl")), File.ReadAllBytes(dir.File("merged.jsonl")));
        PargsCli.Fails(["generate", "--shard", "0/2", "--prompts", prompts], "--shard writes its slice to a file: give --out");
        PargsCli.Fails(["merge", dir.File("s0.jsonl"), "-o", dir.File("m.jsonl"), "--expect-rows", "7"], "a shard is missing");
        Assert.Equal(["merged.jsonl", "prompts.txt", "s0.jsonl", "s1.jsonl", "whole.jsonl"], Directory.GetFiles(dir.Path).Select(f => Path.GetFileName(f)).Order().ToArray());
    }
}
