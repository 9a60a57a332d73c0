using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Decoding;

/// <summary>
/// The shared decoding loop of every method that picks one token per step. It knows no method names: each
/// step it hands the method's <see cref="TokenRule"/> the LM's next-token distribution (and the reward model's
/// candidate scorer, for guided methods), appends the chosen tokens, and lets rows finish independently.
/// <code>
///   next = lm.AddRows(prompts); scorer.AddRows(prompts)        prefill, LM and RM each over its own cache
///   repeat: tokens = rule.Choose(next, scorer, rows' streams)   e.g. PARGS: top-k → r → log p + w·r → sample; scorer.Commit
///           rows accept tokens (EOS, stop strings, length)
///           next = lm.Append(tokens)                            one cached step per token
/// </code>
/// Where the steps are computed is the engine's business (<see cref="LanguageModelEngine"/>): the cached local
/// engine, or the cache-free reference one — the same loop and rule run on both, which is what makes the
/// reference an oracle of the caches.
/// </summary>
public sealed class TokenwiseDecoder
{
    readonly LanguageModelEngine engine;
    readonly IRewardModel? rm;
    readonly ITokenwiseOptions method;
    readonly DecodingOptions options;

    public TokenwiseDecoder(LanguageModelEngine engine, IRewardModel? rm, ITokenwiseOptions method, DecodingOptions options)
    {
        this.engine = engine;
        this.method = method;
        this.rm = method.Method.IsTokenwiseGuided ? method.Method.RewardModelFor(rm) : null;
        this.options = options;
    }

    /// <summary>The loop on <paramref name="lm"/>'s engine for <paramref name="options"/> (its method must be tokenwise).</summary>
    public TokenwiseDecoder(CausalLM lm, IRewardModel? rm, DecodingOptions options)
        : this(Engines.For(lm, options.Engine), rm, TokenwiseOf(options), options) { }

    static ITokenwiseOptions TokenwiseOf(DecodingOptions options) => options.Method as ITokenwiseOptions
        ?? throw new PargsException($"{options.Method.Method.Name} does not decode token by token");

    /// <summary>Which reward paths the runs of this decoder took (siblings, full forwards, commits).</summary>
    public CandidateScoringCounts Counts { get; } = new();

    /// <summary>Optional per-step trace (row, step, candidate ids, combined scores) — for tests and debugging.</summary>
    public Action<StepTrace>? Trace { get; init; }

    /// <summary>Runs one batch of rows to completion. <paramref name="rows"/>[b] starts from <paramref name="prompts"/>[b].</summary>
    public void Run(IReadOnlyList<int[]> prompts, IReadOnlyList<RowProgress> rows, Action<RowProgress>? onToken = null)
    {
        int batch = prompts.Count;
        int longest = prompts.Max(p => p.Length);
        var random = rows.Select(r => DecodingSteps.RowRandom(options.Seed, r.PromptIndex, r.SampleIndex)).ToArray();
        var rule = method.CreateRule();
        using var _ = engine.UsesTorch ? TorchScopes.NoGrad() : null; // the host engine never loads torch
        using var lm = engine.OpenSession(longest + options.MaxNewTokens + 1);
        using var scorer = rm is null ? null : engine.OpenScorer(rm, rule.ScoredCandidates, longest + options.MaxNewTokens + 1, Counts);

        // A remote LM's rows answer one by one; a remote RM's scorer can then ask for each row's rewards at once instead of
        // after the slowest row (IPrefetchingScorer: the same requests, sent earlier). Only rows still running: a row that has
        // just finished is appended with the others, but no step will score it (its Done is set before the Append that answers).
        if (lm is IRowAnswerSource answers && scorer is IPrefetchingScorer prefetching)
            answers.RowAnswered = (row, candidates) => { if (!rows[row].Done) prefetching.Prefetch(row, candidates); };
        var next = lm.AddRows(prompts);
        scorer?.AddRows(prompts);
        for (int step = 0; step < options.MaxNewTokens && rows.Any(r => !r.Done); step++)
        {
            using var scope = engine.UsesTorch ? TorchScopes.DisposeScope() : null;
            var tokens = rule.Choose(new TokenwiseStep
            {
                Next = next, Scorer = scorer, RowRandom = random, Active = rows.Select(r => !r.Done).ToArray(), Index = step, Trace = Trace,
            });
            for (int b = 0; b < batch; b++)
            {
                bool wasDone = rows[b].Done;
                rows[b].Accept((int)tokens[b]);
                if (!wasDone) onToken?.Invoke(rows[b]);
            }
            if (rows.All(r => r.Done) || step == options.MaxNewTokens - 1) break; // no LM step whose logits nobody reads
            next = lm.Append(tokens);
        }
    }
}

/// <summary>One row's candidates and combined scores at one step.</summary>
public sealed record StepTrace(int Row, int Step, long[] CandidateIds, float[] Scores, int ChosenColumn);

/// <summary>
/// torch's no_grad and dispose scopes behind methods of their own: compiling the loop then resolves no torch method, and
/// a decode on the host engine (which opens neither) compiles none of torch's code.
/// </summary>
static class TorchScopes
{
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public static IDisposable NoGrad() => no_grad();

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public static IDisposable DisposeScope() => NewDisposeScope();
}

/// <summary>The engine a local model decodes on for a <see cref="DecodingEngine"/> choice — stated once.</summary>
public static class Engines
{
    public static LanguageModelEngine For(CausalLM lm, DecodingEngine engine) => engine switch
    {
        DecodingEngine.Naive => LanguageModelEngine.Recompute(lm),
        _ => LanguageModelEngine.Cached(lm),
    };
}
