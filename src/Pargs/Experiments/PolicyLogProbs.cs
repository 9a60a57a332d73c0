using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Models;
using static TorchSharp.torch;

namespace Pargs.Experiments;

/// <summary>
/// The log-probability of each generated sample under the distribution its method drew it from, for the reward–KL
/// frontier: KL(π ‖ p_base) ≈ mean over samples y ~ π of Σ_t [log π(y_t | x, y&lt;t) − log p_base(y_t | x, y&lt;t)].
/// <para>WHICH METHODS DEFINE A POLICY (<see cref="TemperatureOf"/>): those that draw each token from
/// softmax(s / T) over candidate scores s — top-k (s = log p over the LM's top k; also the DPO row, on the policy),
/// PARGS (s = log p + w·r over the top k), FaRMA (s = log p + w·r, top k after combining) and GenARM (s = log p +
/// α·log π_r over the whole vocabulary). Their step trace carries exactly s and the chosen column, so log π of the
/// drawn token is s_c / T − logsumexp(s / T), read while decoding, not recomputed. Argmax methods (ARGS, PARGS-G,
/// FaRMA-G) put all mass on one sequence, and the searches (Best-of-N, blockwise CD, CARDS) select among whole
/// samples, whose probability has no per-token form: for them the frontier uses perplexity under the base LM.</para>
/// <para>HOW: the method's rule is wrapped (<see cref="TracedOptions"/>) so that every step's trace reaches us while
/// <see cref="TextGenerator"/> decodes exactly as it always does (same rows, seeds and tokens); each traced token
/// is checked against the token the row kept, so a wrong row mapping cannot go unnoticed.</para>
/// </summary>
public static class PolicyLogProbs
{
    /// <summary>The temperature of the per-token softmax the method samples from, or null when it defines no per-token policy.</summary>
    public static double? TemperatureOf(IMethodOptions method) => method switch
    {
        TopKOptions o => o.Temperature,
        PargsOptions o => o.Temperature,
        FarmaOptions o => o.Temperature,
        GenArmOptions o => o.Temperature,
        _ => null,
    };

    /// <summary>log softmax(s / T) at column c, in double.</summary>
    public static double LogSoftmaxAt(float[] scores, int chosen, double temperature)
    {
        double max = double.NegativeInfinity;
        foreach (var s in scores) max = Math.Max(max, s / temperature);
        double total = 0;
        foreach (var s in scores) total += Math.Exp(s / temperature - max);
        return scores[chosen] / temperature - max - Math.Log(total);
    }

    /// <summary>
    /// Generates like <see cref="TextGenerator"/> and returns, per prompt, the tokens the method drew (the kept ones,
    /// plus the EOS that ended the row, which the policy chose too) and Σ log π over them. The method must define a
    /// policy (<see cref="TemperatureOf"/>).
    /// </summary>
    public static (IReadOnlyList<GenerationResult> Results, int[][] Drawn, double[] LogProbs) Generate(CausalLM lm, Rewards.IRewardModel? rm,
        IReadOnlyList<string> prompts, DecodingOptions options, IProgress<int>? promptsDone = null)
    {
        if (options.Method is not ITokenwiseOptions tokenwise || TemperatureOf(options.Method) is not { } temperature)
            throw new ArgumentException($"{options.Method.Method.Name} defines no per-token policy");
        // TextGenerator runs the prompts in consecutive batches of BatchSize (one at a time on the reference engine)
        // and creates the rule once per batch: batch n, row b is prompt n·size + b.
        int batchSize = options.Engine == DecodingEngine.Naive ? 1 : options.BatchSize;
        var steps = new Dictionary<(int Prompt, int Step), (int Token, double LogProb)>();
        var traced = new TracedOptions(tokenwise, (batch, trace) =>
            steps[(batch * batchSize + trace.Row, trace.Step)] = ((int)trace.CandidateIds[trace.ChosenColumn], LogSoftmaxAt(trace.Scores, trace.ChosenColumn, temperature)));
        var results = TextGenerator.Generate(lm, rm, prompts, options with { Method = traced }, promptsDone);

        var drawn = new int[results.Count][];
        var logProbs = new double[results.Count];
        foreach (var result in results)
        {
            int p = result.PromptIndex, n = result.TokenIds.Length;
            bool endedAtEos = result.FinishReason == "eos";
            var tokens = new int[n + (endedAtEos ? 1 : 0)];
            double sum = 0;
            for (int t = 0; t < tokens.Length; t++)
            {
                if (!steps.TryGetValue((p, t), out var step) || (t < n && step.Token != result.TokenIds[t]))
                    throw new InvalidOperationException($"prompt {p}, step {t}: the traced token is not the one the row kept (the trace's row mapping is wrong)");
                tokens[t] = step.Token;
                sum += step.LogProb;
            }
            drawn[p] = tokens;
            logProbs[p] = sum;
        }
        return (results, drawn, logProbs);
    }

    /// <summary>Σ log p_base(y_t | x, y&lt;t) of <paramref name="tokens"/> after <paramref name="promptIds"/> (full softmax, T = 1), from one forward.</summary>
    public static double BaseLogProb(CausalLM baseLm, int[] promptIds, int[] tokens)
    {
        if (tokens.Length == 0) return 0;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var ids = promptIds.Concat(tokens).Select(i => (long)i).ToArray();
        var logp = baseLm.Logits(tensor(ids).unsqueeze(0)).log_softmax(-1)[0];                         // [T, V]
        var picked = logp.narrow(0, promptIds.Length - 1, tokens.Length)
            .gather(1, tensor(tokens.Select(t => (long)t).ToArray()).unsqueeze(1));
        return picked.to(ScalarType.Float64).sum().item<double>();
    }

    /// <summary>A tokenwise method's options whose rule reports every step's trace (with the batch's number) and otherwise is the method's own.</summary>
    sealed record TracedOptions(ITokenwiseOptions Inner, Action<int, StepTrace> OnStep) : ITokenwiseOptions
    {
        int batches;
        public DecodingMethod Method => Inner.Method;
        public void Validate(int vocabSize) => Inner.Validate(vocabSize);
        public int? RecordK => Inner.RecordK;
        public double? RecordW => Inner.RecordW;
        public TokenRule CreateRule()
        {
            int batch = batches++;
            return new TracedRule(Inner.CreateRule(), trace => OnStep(batch, trace));
        }
    }

    sealed class TracedRule(TokenRule inner, Action<StepTrace> onStep) : TokenRule
    {
        public override int ScoredCandidates => inner.ScoredCandidates;
        public override long[] Choose(TokenwiseStep step) => inner.Choose(new TokenwiseStep
        {
            Next = step.Next, Scorer = step.Scorer, RowRandom = step.RowRandom, Active = step.Active, Index = step.Index,
            Trace = trace => { step.Trace?.Invoke(trace); if (step.Active[trace.Row]) onStep(trace); },
        });
    }
}
