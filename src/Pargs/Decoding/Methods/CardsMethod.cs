using Pargs.Rewards;

namespace Pargs.Decoding.Methods;

/// <summary>
/// CARDS (Li et al., COLM 2025, "Cascade Reward Sampling"): segment-level rejection sampling. A segment is sampled
/// from the LM (top-k, temperature T) until the next token's predictive entropy reaches
/// <see cref="EntropyThreshold"/> (after at least <see cref="MinSegment"/> tokens; at most <see cref="MaxSegment"/>);
/// prompt + accepted text + segment is scored by the reward model and accepted with probability
/// min(1, exp((r − τ)/β)), where τ rises linearly from τ₀ = (1 − α)·r(prompt) + α·r* to r* as the response grows
/// towards max_new_tokens (τ = τ₀ + n·(r* − τ₀)/max_new_tokens, capped at r*). After <see cref="MaxRejections"/>
/// rejections in a row the best segment seen since the last acceptance is taken. Defaults are the paper's:
/// α = 0.5, β = 0.7, entropy 3.0, segments of 4…64 tokens, 20 rejections, top-k 40; their code samples segments at
/// temperature β as well, so T defaults to 0.7. r* (--target-reward) is the reward scale's own "good" value (8.5
/// for their reward model): it depends on the reward model, so it has no default.
/// </summary>
public sealed record CardsOptions : ISearchOptions
{
    /// <summary>r*: the reward the acceptance threshold rises to (required; depends on the reward model's scale).</summary>
    public double? TargetReward { get; init; }
    public int K { get; init; } = DefaultTopK;
    /// <summary>Sampling temperature of segments (their code: β).</summary>
    public double Temperature { get; init; } = DefaultBeta;
    public double Alpha { get; init; } = 0.5;
    /// <summary>β of the acceptance probability min(1, exp((r − τ)/β)).</summary>
    public double Beta { get; init; } = DefaultBeta;
    /// <summary>Nats of next-token entropy that end a segment.</summary>
    public double EntropyThreshold { get; init; } = 3.0;
    public int MinSegment { get; init; } = 4;
    public int MaxSegment { get; init; } = 64;
    public int MaxRejections { get; init; } = 20;

    public const int DefaultTopK = 40;
    public const double DefaultBeta = 0.7;

    public DecodingMethod Method => DecodingMethods.Cards;
    public void Validate(int vocabSize)
    {
        if (TargetReward is not { } r || !double.IsFinite(r))
            throw new PargsException("--method cards needs --target-reward r* (the reward its acceptance threshold rises to; it depends on the reward model's scale, e.g. a high percentile of its rewards on top-k samples)");
        OptionChecks.K(K, vocabSize);
        OptionChecks.Temperature(Temperature, Method);
        if (!(Alpha >= 0 && Alpha <= 1)) throw new PargsException($"CARDS α must be in [0, 1], got {Alpha}");
        if (!(Beta > 0) || !double.IsFinite(Beta)) throw new PargsException($"CARDS β must be positive, got {Beta}");
        if (!(EntropyThreshold >= 0) || !double.IsFinite(EntropyThreshold)) throw new PargsException($"CARDS entropy threshold must be non-negative, got {EntropyThreshold}");
        if (MinSegment < 1 || MaxSegment < MinSegment) throw new PargsException($"CARDS segments need 1 ≤ min ≤ max tokens, got {MinSegment}…{MaxSegment}");
        if (MaxRejections < 0) throw new PargsException($"CARDS rejections must be non-negative, got {MaxRejections}");
    }
    public int? RecordK => K;
    public double? RecordW => null;
    public ISequenceSearch CreateSearch() => new CardsSearch(this);

    internal static CardsOptions From(MethodSettings s) => new()
    {
        TargetReward = s.TargetReward,
        K = s.K ?? DefaultTopK,
        Temperature = s.Temperature ?? DefaultBeta,
    };

    /// <summary>τ after <paramref name="generated"/> response tokens (τ₀ from the prompt's reward), capped at r*.</summary>
    public double Threshold(double promptReward, int generated, int maxNewTokens)
    {
        double target = TargetReward!.Value;
        double start = (1 - Alpha) * promptReward + Alpha * target;
        return Math.Min(start + generated * (target - start) / maxNewTokens, target);
    }

    /// <summary>min(1, exp((r − τ)/β)).</summary>
    public double AcceptanceProbability(double reward, double threshold) => Math.Min(1.0, Math.Exp((reward - threshold) / Beta));

    /// <summary>Entropy in nats of the distribution whose log-probabilities are <paramref name="logProbs"/>.</summary>
    public static double Entropy(float[] logProbs)
    {
        double h = 0;
        foreach (var l in logProbs)
            if (float.IsFinite(l)) h -= Math.Exp(l) * l;
        return h;
    }
}

/// <summary>
/// One prompt at a time. The session's single row holds prompt + accepted text; a segment is sampled on it, and a
/// rejected one is undone by opening a fresh session on prompt + accepted text (one prefill, counted as an LM call).
/// The row's stream (seed, prompt) draws both the tokens and the acceptance tests.
/// </summary>
sealed class CardsSearch(CardsOptions options) : ISequenceSearch
{
    public IReadOnlyList<(RowProgress Best, double Reward)> Run(SearchContext context, IReadOnlyList<int[]> prompts, IReadOnlyList<int> promptIndices)
    {
        var rm = options.Method.RewardModelFor(context.RewardModel)!;
        var result = new List<(RowProgress, double)>();
        for (int i = 0; i < prompts.Count; i++) result.Add(RunOne(context, rm, prompts[i], promptIndices[i]));
        return result;
    }

    (RowProgress, double) RunOne(SearchContext context, IRewardModel rm, int[] prompt, int promptIndex)
    {
        var calls = context.Calls;
        int maxNew = context.Options.MaxNewTokens;
        int capacity = prompt.Length + maxNew + 1;
        var random = DecodingSteps.RowRandom(context.Options.Seed, promptIndex);
        using var _ = TorchSharp.torch.no_grad();
        double promptReward = SearchRewards.Of(context, rm, [prompt], [new RowProgress(context.Rows, promptIndex, 0, prompt)])[0];

        var accepted = new RowProgress(context.Rows, promptIndex, 0, prompt);
        double acceptedReward = promptReward;
        var session = context.Engine.OpenSession(capacity);
        try
        {
            var next = session.AddRows([prompt]);
            if (calls is not null) calls.LanguageModel++;
            RowProgress? best = null;
            double bestReward = double.NegativeInfinity;
            int rejections = 0;
            while (!accepted.Done)
            {
                // Sample a segment on the session's row, starting from the accepted text.
                var segment = SearchRewards.Replay(context.Rows, promptIndex, 0, prompt, accepted.Tokens);
                int length = 0;
                while (!segment.Done && length < options.MaxSegment)
                {
                    using var scope = TorchSharp.torch.NewDisposeScope();
                    var logProbs = SearchRewards.Rows(next)[0];
                    if (length >= options.MinSegment && CardsOptions.Entropy(logProbs) >= options.EntropyThreshold) break;
                    var (topLogp, topIds) = next.TopK(options.K);
                    var candidates = DecodingSteps.ToRows(topLogp)[0];
                    int j = DecodingSteps.SampleSoftmax(candidates, options.Temperature, random);
                    long token = topIds[0, j].item<long>();
                    segment.Accept((int)token);
                    length++;
                    if (segment.Done) break;
                    next = session.Append([token]);
                    if (calls is not null) calls.LanguageModel++;
                }
                double reward = SearchRewards.Of(context, rm, [prompt], [segment])[0];
                if (reward > bestReward) { best = segment; bestReward = reward; }
                double threshold = options.Threshold(promptReward, accepted.Tokens.Count, maxNew);
                RowProgress? taken = null;
                double takenReward = 0;
                if (random.NextDouble() < options.AcceptanceProbability(reward, threshold)) { taken = segment; takenReward = reward; }
                else if (++rejections > options.MaxRejections) { taken = best; takenReward = bestReward; }
                if (taken is null)
                {
                    // Undo the segment: the row goes back to prompt + accepted text.
                    Reopen(context.Engine, ref session, ref next, prompt, accepted, capacity, calls);
                    continue;
                }
                if (calls is not null) calls.Tokens += taken.Tokens.Count - accepted.Tokens.Count;
                bool wasLast = ReferenceEquals(taken, segment);
                accepted = taken;
                acceptedReward = takenReward;
                best = null;
                bestReward = double.NegativeInfinity;
                rejections = 0;
                if (!wasLast && !accepted.Done) Reopen(context.Engine, ref session, ref next, prompt, accepted, capacity, calls); // the session holds the last segment, not the best
            }
            return (accepted, acceptedReward);
        }
        finally { session.Dispose(); }
    }

    /// <summary>A fresh session on prompt + accepted text (sessions cannot drop tokens): one prefill.</summary>
    static void Reopen(Engine.LanguageModelEngine engine, ref Engine.ILanguageModelSession session, ref Engine.NextTokens next,
        int[] prompt, RowProgress accepted, int capacity, MethodCalls? calls)
    {
        session.Dispose();
        session = engine.OpenSession(capacity);
        next = session.AddRows([[.. prompt, .. accepted.Tokens]]);
        if (calls is not null) calls.LanguageModel++;
    }
}
