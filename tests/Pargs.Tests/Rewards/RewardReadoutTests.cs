using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using Pargs.Rewards;
using Pargs.Tests.Decoding;
using Pargs.Tests.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Rewards;

/// <summary>
/// Where a sequence's reward is read: transformers' …ForSequenceClassification reads the last token that is not
/// <c>pad_token_id</c> (with TRL's pad = EOS, the token before the trailing EOS); Pargs's own reward models read
/// the last token. Loading decides which, and decoding's cached scorers follow the same rule as the oracle.
/// </summary>
public class RewardReadoutTests
{
    const int Eos = 2;

    static RewardModel ImportedRm(int vocab, long seed = 99)
    {
        var rm = TinyModels.RandomRM(TinyModels.LlamaConfig(vocab) with { PadTokenId = Eos }, seed, headScale: 3f);
        rm.Readout = RewardReadout.LastNonPadToken;
        return rm;
    }

    [Fact]
    public void The_reward_is_read_at_the_last_token_that_is_not_padding_as_transformers_reads_it()
    {
        var rm = ImportedRm(20);
        using var _ = no_grad();
        var ids = tensor(new long[,] { { 1, 5, 6, Eos, Eos }, { 1, 7, Eos, 8, Eos }, { Eos, Eos, Eos, Eos, Eos }, { 1, 9, 10, 11, 0 } });
        var valid = tensor(new bool[,] { { true, true, true, true, true }, { true, true, true, true, true }, { true, true, true, true, true }, { true, true, true, true, false } });
        var prefix = rm.PrefixRewards(ids, valid).data<float>().ToArray(); // [4, 5], written independently of the rule
        var read = rm.SequenceRewards(ids, valid).data<float>().ToArray();
        // Row 0: "5 6" then trailing pads → position 2. Row 1: a pad inside, then 8, then pad → position 3 (the last
        // non-pad, not the first pad). Row 2: all pads → position 0 (transformers' argmax of an all-zero mask).
        // Row 3: right padding after 11 → position 3.
        Assert.Equal(prefix[0 * 5 + 2], read[0]);
        Assert.Equal(prefix[1 * 5 + 3], read[1]);
        Assert.Equal(prefix[2 * 5 + 0], read[2]);
        Assert.Equal(prefix[3 * 5 + 3], read[3]);

        rm.Readout = RewardReadout.LastToken; // Pargs's own reward models: the EOS position is what they trained
        var last = rm.SequenceRewards(ids, valid).data<float>().ToArray();
        Assert.Equal(prefix[0 * 5 + 4], last[0]);
        Assert.Equal(prefix[3 * 5 + 3], last[3]);
        Assert.NotEqual(read[0], last[0]);
    }

    [Fact]
    public void Loading_reads_imported_reward_models_as_transformers_does_and_pargs_trained_ones_at_their_last_token()
    {
        var dir = Directory.CreateTempSubdirectory("pargs-readout-").FullName;
        try
        {
            var rm = TinyModels.RandomRM(TinyModels.LlamaConfig(20) with { PadTokenId = Eos }, seed: 3);
            rm.Save(Path.Combine(dir, "imported")); // no pargs_objective: as if trained by TRL
            rm.Save(Path.Combine(dir, "ours"), RewardObjective.Partial);
            Assert.Equal(RewardReadout.LastNonPadToken, RewardModel.Load(Path.Combine(dir, "imported"), requireTokenizer: false).Readout);
            Assert.Equal(RewardReadout.LastToken, RewardModel.Load(Path.Combine(dir, "ours"), requireTokenizer: false).Readout);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData("pargs")]
    [InlineData("args")]
    public void Cached_candidate_scores_follow_the_rule_and_equal_the_oracle(string method)
    {
        // vocab 7 and k = 7: EOS (the pad) is a candidate at every step, and StopAtEos = false lets rows run past it.
        const int vocab = 7;
        var lm = TinyModels.RandomLM(TinyModels.LlamaConfig(vocab), seed: 5);
        lm.Tokenizer = new TestCharTokenizer(vocab);
        var rm = ImportedRm(vocab);
        var options = new DecodingOptions
        {
            Method = DecodingMethods.Parse(method).Options(new MethodSettings { K = vocab, W = 2.0 }),
            MaxNewTokens = 10, Seed = 4, StopAtEos = false, BatchSize = 3,
        };
        var outcome = OracleComparison.AssertFastMatchesNaive(lm, rm, options, ["abc", "d", "bcad"]);

        // At the first step (same prompts in both runs) the EOS candidate's score is log p + w·r(prompt) under the
        // rule, and log p + w·r(prompt∘EOS) when the EOS position is read: they must differ.
        double EosScoreAtStep0(IEnumerable<StepTrace> trace, int row)
        {
            var t = trace.First(t => t.Row == row && t.Step == 0);
            return t.Scores[Array.IndexOf(t.CandidateIds, (long)Eos)];
        }
        rm.Readout = RewardReadout.LastToken;
        var atEos = OracleComparison.AssertFastMatchesNaive(lm, rm, options, ["abc", "d", "bcad"]);
        for (int row = 0; row < 3; row++)
            Assert.True(Math.Abs(EosScoreAtStep0(outcome.FastTrace, row) - EosScoreAtStep0(atEos.FastTrace, row)) > 1e-3, $"row {row}");
    }
}
