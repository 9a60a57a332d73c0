using Pargs.Engine;

namespace Pargs.Decoding.Methods;

/// <summary>
/// What a tokenwise method sees at one step of the shared loop, for every row of the batch: the LM's
/// next-token distribution, the candidate scorer (when the method consults a reward model), each row's own
/// random stream, and which rows still run.
/// </summary>
public sealed class TokenwiseStep
{
    public required NextTokens Next { get; init; }
    /// <summary>The reward model's candidate scorer; null for methods without a reward model.</summary>
    public required ICandidateScorer? Scorer { get; init; }
    public required Random[] RowRandom { get; init; }
    public required IReadOnlyList<bool> Active { get; init; }
    public required int Index { get; init; }
    public Action<StepTrace>? Trace { get; init; }
}

/// <summary>
/// A tokenwise method's rule: one step's choice for every row, composed of <see cref="DecodingSteps"/>
/// (vLLM-sampler style: log-probs → candidates → [reward] → combine → choose). A rule that scores candidates
/// commits its choice to the scorer, so the reward model's prefix grows with the row.
/// </summary>
public abstract class TokenRule
{
    /// <summary>Candidates the reward model scores per row and step (sizes the scorer's cache); 0 without one.</summary>
    public virtual int ScoredCandidates => 0;

    /// <summary>The chosen token of every row (finished rows may get any token; the loop ignores it).</summary>
    public abstract long[] Choose(TokenwiseStep step);

    /// <summary>The top-k candidates of every row, chosen by <paramref name="pick"/> among their (combined) scores; traced.</summary>
    protected static long[] ChooseAmongTopK(TokenwiseStep step, int k, Func<float[][], int[]> pick, Func<long[], float[][], float[][]>? combine = null)
    {
        var (candLogp, ids) = step.Next.TopKRows(k); // host arrays: no torch on the host engine's path
        var scores = new float[ids.Length / k][];
        for (int b = 0; b < scores.Length; b++) scores[b] = candLogp.AsSpan(b * k, k).ToArray();
        if (combine is not null) scores = combine(ids, scores);
        var chosen = pick(scores);
        if (step.Trace is { } trace)
            for (int b = 0; b < chosen.Length; b++)
                trace(new StepTrace(b, step.Index, ids.AsSpan(b * k, k).ToArray(), scores[b], chosen[b]));
        return chosen.Select((j, b) => ids[b * k + j]).ToArray();
    }
}

/// <summary>A method that decodes whole samples and picks among them (Best-of-N), with the loop as its sampler.</summary>
public interface ISequenceSearch
{
    /// <summary>Per prompt, the chosen sample and its reward.</summary>
    IReadOnlyList<(RowProgress Best, double Reward)> Run(SearchContext context, IReadOnlyList<int[]> prompts, IReadOnlyList<int> promptIndices);
}

/// <summary>What a search has to work with: the engine to sample from, the reward model, the run's shared settings.</summary>
public sealed record SearchContext(LanguageModelEngine Engine, Rewards.IRewardModel? RewardModel, DecodingOptions Options, DecodingContext Rows)
{
    /// <summary>Where a search counts its language-model and reward-model calls (benchmarks read it); null = not counted.</summary>
    public MethodCalls? Calls { get; init; }
}

/// <summary>
/// Calls a search made, counted honestly: an LM call is one forward of a session (a prefill or a step of all its
/// rows, per row), an RM call one reward of one sequence; tokens are the output tokens they bought.
/// </summary>
public sealed class MethodCalls
{
    public long LanguageModel { get; set; }
    public long RewardModel { get; set; }
    public long Tokens { get; set; }
}
