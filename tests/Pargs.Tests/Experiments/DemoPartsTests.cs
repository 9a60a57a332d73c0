using Pargs.Evaluation;
using Pargs.Experiments;
using Pargs.Models;
using Pargs.Rewards.Gold;

namespace Pargs.Tests.Experiments;

public class DemoPartsTests
{
    [Fact]
    public void Bradley_Terry_label_probability_is_a_logistic_of_the_gold_gap_over_tau()
    {
        Assert.Equal(0.5, GoldPairSampler.PreferenceProbability(0.3, 0.3, 0.1), 12);
        Assert.Equal(1 / (1 + Math.Exp(-2.0)), GoldPairSampler.PreferenceProbability(0.5, 0.3, 0.1), 12);
        Assert.Equal(1 - GoldPairSampler.PreferenceProbability(0.5, 0.3, 0.1), GoldPairSampler.PreferenceProbability(0.3, 0.5, 0.1), 12);
    }

    [Fact]
    public void Sampled_pairs_are_seeded_and_mostly_follow_the_gold_reward()
    {
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        var gold = LexiconSentiment.Positive(VaderLexicon.LoadDefault());
        var prompts = new[] { "Once upon a time, there was a little dog named", "One day, Lily went to the park and" };
        var settings = new GoldPairSampler.Settings(PairsPerPrompt: 6, TopK: 40, MaxNewTokens: 24, LabelTemperature: 0.05, DropTies: true, Seed: 5, BatchSize: 32);
        var a = GoldPairSampler.Sample(lm, gold, prompts, settings);
        var b = GoldPairSampler.Sample(lm, gold, prompts, settings);
        Assert.Equal(a, b);
        Assert.NotEmpty(a);
        Assert.All(a, p => Assert.NotEqual(p.ChosenGold, p.RejectedGold));
        Assert.All(a, p => Assert.Equal(gold.Score(p.Prompt, p.Chosen), p.ChosenGold, 12));
        // With τ = 0.05, a label against the gold order needs a gap below ~0.15 and even then is the rarer draw.
        Assert.True(a.Count(p => p.ChosenGold > p.RejectedGold) > a.Count / 2);
        var other = GoldPairSampler.Sample(lm, gold, prompts, settings with { Seed = 6 });
        Assert.NotEqual(a.Select(p => p.Chosen), other.Select(p => p.Chosen));
    }

    [Fact]
    public void Base_lm_probe_gives_one_log_prob_per_continuation_token_matching_a_full_forward()
    {
        using var lm = CausalLM.Load(TestPaths.Stories260KGguf);
        var probe = new BaseLmProbe(lm);
        string prompt = "Once upon a time", continuation = " there was a little girl named Lily.";
        var logProbs = probe.ContinuationLogProbs(prompt, continuation);
        var tok = lm.Tokenizer!;
        int expected = tok.Encode(prompt + continuation, addBos: true).Length - tok.Encode(prompt, addBos: true).Length;
        Assert.Equal(expected, logProbs.Count);
        Assert.All(logProbs, lp => Assert.True(lp <= 0));
        // The LM's own greedy continuation is far more likely than the same tokens reversed in order.
        var scrambled = probe.ContinuationLogProbs(prompt, " Lily. named girl little a was there");
        Assert.True(Perplexity.FromLogProbs(logProbs) < Perplexity.FromLogProbs(scrambled));

        var e1 = probe.Embed("The dog ran to the park.");
        Assert.Equal(lm.Config.HiddenSize, e1.Length);
        Assert.Equal(1.0, Coherence.Cosine(e1, probe.Embed("The dog ran to the park.")), 6);
    }

    [Fact]
    public void Evaluator_without_a_model_writes_the_table_json_and_plots_from_user_generations()
    {
        using var temp = new TempDir();
        var records = new List<GenerationRecord>();
        for (int p = 0; p < 3; p++)
        {
            records.Add(new GenerationRecord { Instruction = $"prompt {p}", Output = " it was sad and bad", Method = "topk", Tokens = 5, Seconds = 0.1 });
            records.Add(new GenerationRecord { Instruction = $"prompt {p}", Output = " it was happy and good", Method = "pargs", W = 1, Tokens = 5, Seconds = 0.2 });
            records.Add(new GenerationRecord { Instruction = $"prompt {p}", Output = " they were great friends", Method = "pargs", W = 2, Tokens = 4, Seconds = 0.2 });
        }
        var gold = LexiconSentiment.Positive(VaderLexicon.LoadDefault());
        var outputs = GenerationEvaluator.Run(records, gold, "topk", probe: null, temp.Path);
        Assert.Equal(3, outputs.Rows.Count);
        var pargs = outputs.Rows.Single(r => r.Method == "pargs" && r.W == 1);
        Assert.Equal(3, pargs.VsBaseline!.Wins);
        Assert.True(double.IsNaN(pargs.Perplexity));
        Assert.All(outputs.FilesRelativeTo(temp.Path), f => Assert.True(File.Exists(Path.Combine(temp.Path, f)), f));
    }

    [Fact]
    public void A_stage_manifest_counts_only_with_the_same_fingerprint_and_all_its_files()
    {
        using var temp = new TempDir();
        File.WriteAllText(temp.File("a.txt"), "x");
        new StageManifest { Stage = "s", Fingerprint = "f1", Files = ["a.txt"] }.Write(temp.Path);
        Assert.NotNull(StageManifest.ReadIfComplete(temp.Path, "f1"));
        Assert.Null(StageManifest.ReadIfComplete(temp.Path, "f2"));
        File.Delete(temp.File("a.txt"));
        Assert.Null(StageManifest.ReadIfComplete(temp.Path, "f1"));
        File.WriteAllText(temp.File(StageManifest.FileName), "{ not json");
        Assert.Null(StageManifest.ReadIfComplete(temp.Path, "f1"));
        Assert.NotEqual(StageManifest.FingerprintOf("", new { k = 1 }), StageManifest.FingerprintOf("", new { k = 2 }));
        Assert.NotEqual(StageManifest.FingerprintOf("a", new { k = 1 }), StageManifest.FingerprintOf("b", new { k = 1 }));
    }
}
