using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Tests.Models;
using static TorchSharp.torch;

namespace Pargs.Tests.Decoding;

/// <summary>
/// What adding a decoding method touches: one file (an options record and its rule, here below) and one
/// registration call. The method is then found by name by the library's request resolution (as the CLI and
/// experiment configs find methods), refuses settings it does not read, and runs on the shared loop with
/// either engine.
/// </summary>
public class MethodRegistryTests
{
    /// <summary>A method defined only in the tests: always the runner-up, the LM's second most likely token.</summary>
    sealed record RunnerUpOptions : ITokenwiseOptions
    {
        public static readonly DecodingMethod Registration = new("test-runner-up", "the LM's second most likely token",
            RewardUse.None, null, samples: false, [], _ => new RunnerUpOptions());

        public DecodingMethod Method => Registration;
        public void Validate(int vocabSize) { if (vocabSize < 2) throw new PargsException("needs two tokens"); }
        public int? RecordK => null;
        public double? RecordW => null;
        public TokenRule CreateRule() => new RunnerUpRule();
    }

    sealed class RunnerUpRule : TokenRule
    {
        public override long[] Choose(TokenwiseStep step) => ChooseAmongTopK(step, 2, scores => scores.Select(_ => 1).ToArray());
    }

    static readonly Lazy<bool> registered = new(() => { DecodingMethods.Register(RunnerUpOptions.Registration); return true; });

    [Fact]
    public void A_method_registered_with_one_call_is_found_by_name_and_runs_on_both_engines()
    {
        _ = registered.Value;
        Assert.Contains("test-runner-up", DecodingMethods.Names);
        var config = TinyModels.LlamaConfig(40);
        var lm = TinyModels.RandomLM(config, seed: 11);
        lm.Tokenizer = new TestCharTokenizer(40);

        var request = new GenerationRequest { Method = "test-runner-up", MaxNewTokens = 6, StopAtEos = false };
        var options = request.Resolve(null, config.VocabSize);
        var cached = TextGenerator.Generate(lm, null, ["abc"], options).Single();
        var reference = TextGenerator.Generate(lm, null, ["abc"], options with { Engine = DecodingEngine.Naive }).Single();

        // Written out: each step the second-largest logit of a full forward of the sequence so far.
        var sequence = lm.Tokenizer!.Encode("abc", addBos: true).Select(i => (long)i).ToList();
        using (no_grad())
            for (int step = 0; step < 6; step++)
            {
                var logits = lm.Logits(tensor(sequence.ToArray()).unsqueeze(0))[0, -1];
                sequence.Add(logits.topk(2).indexes[1].item<long>());
            }
        var expected = sequence.Skip(sequence.Count - 6).Select(i => (int)i).ToArray();
        Assert.Equal(expected, cached.TokenIds);
        Assert.Equal(expected, reference.TokenIds);
        Assert.Contains("-k has no effect with --method test-runner-up",
            Assert.Throws<PargsException>(() => (request with { Settings = new MethodSettings { K = 3 } }).Resolve(null, 40)).Message);
        Assert.Throws<ArgumentException>(() => DecodingMethods.Register(RunnerUpOptions.Registration));
    }

    [Fact]
    public void Every_builtin_method_states_what_it_needs_once()
    {
        Assert.Equal(["greedy", "topk", "topp", "best-of-n", "args", "pargs", "pargs-g"], DecodingMethods.All.Take(7).Select(m => m.Name));
        // The method → reward-objective rule, in one place: ARGS and Best-of-N are defined with a full-sequence RM, PARGS with a partial one.
        Assert.Equal(Pargs.Rewards.RewardObjective.Full, DecodingMethods.Args.GuideObjective);
        Assert.Equal(Pargs.Rewards.RewardObjective.Full, DecodingMethods.BestOfN.GuideObjective);
        Assert.Equal(Pargs.Rewards.RewardObjective.Partial, DecodingMethods.Pargs.GuideObjective);
        Assert.Equal(Pargs.Rewards.RewardObjective.Partial, DecodingMethods.PargsGreedy.GuideObjective);
        Assert.All(DecodingMethods.All.Take(7), m => Assert.Equal(m, m.Options(new MethodSettings()).Method));
    }
}
