using Pargs.Rewards;

namespace Pargs.Decoding.Methods;

/// <summary>
/// Blockwise controlled decoding (Mudgal et al., ICML 2024, "CD-Q blockwise" with a prefix scorer): at each block
/// K continuations of M tokens are sampled from the base LM (softmax(log p / T) over the whole vocabulary, as
/// their blockwise sampler draws from the base policy), the prefix scorer — a partial-sequence reward model, which
/// scores unfinished text — ranks prompt + accepted text + continuation, the best is kept, and the next block
/// starts from it. Tokenwise CD with a prefix scorer is PARGS's rule (<c>--method pargs</c>).
/// </summary>
public sealed record ControlledDecodingOptions : ISearchOptions
{
    /// <summary>K: continuations per block.</summary>
    public int Continuations { get; init; } = MethodSettings.DefaultK;
    /// <summary>M: tokens per block.</summary>
    public int BlockLength { get; init; } = DefaultBlockLength;
    public double Temperature { get; init; } = MethodSettings.DefaultTemperature;

    public const int DefaultBlockLength = 8;

    public DecodingMethod Method => DecodingMethods.ControlledDecoding;
    public void Validate(int vocabSize)
    {
        if (Continuations <= 0) throw new PargsException($"-K must be at least 1, got {Continuations}");
        if (BlockLength <= 0) throw new PargsException($"-M must be at least 1, got {BlockLength}");
        OptionChecks.Temperature(Temperature, Method);
    }
    public int? RecordK => Continuations;
    public double? RecordW => null;
    public ISequenceSearch CreateSearch() => new ControlledDecodingSearch(this);

    internal static ControlledDecodingOptions From(MethodSettings s) => new()
    {
        Continuations = s.Continuations ?? MethodSettings.DefaultK,
        BlockLength = s.BlockLength ?? DefaultBlockLength,
        Temperature = s.Temperature ?? MethodSettings.DefaultTemperature,
    };
}

/// <summary>
/// One prompt at a time on the engine's session: the accepted row is forked into K rows (<c>KeepRows</c>), each
/// samples M tokens with its own seeded stream (seed, prompt, continuation j), the K prefixes are scored, and the
/// session keeps the best row (first on ties) — its cache is already the accepted text. A continuation that ends
/// (EOS, stop string, length) inside its block stops there and is scored as ended; if it wins, the row is done.
/// </summary>
sealed class ControlledDecodingSearch(ControlledDecodingOptions options) : ISequenceSearch
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
        int k = options.Continuations;
        var calls = context.Calls;
        var random = Enumerable.Range(0, k).Select(j => DecodingSteps.RowRandom(context.Options.Seed, promptIndex, j)).ToArray();
        using var _ = TorchSharp.torch.no_grad();
        using var session = context.Engine.OpenSession(prompt.Length + context.Options.MaxNewTokens + 1);
        var next = session.AddRows([prompt]);
        if (calls is not null) calls.LanguageModel++;
        var accepted = new List<int>();
        var best = new RowProgress(context.Rows, promptIndex, 0, prompt);
        double bestReward = double.NaN;
        while (!best.Done)
        {
            next = session.KeepRows(new int[k]); // K copies of the accepted row
            var candidates = Enumerable.Range(0, k).Select(j => SearchRewards.Replay(context.Rows, promptIndex, j, prompt, accepted)).ToList();
            for (int step = 0; step < options.BlockLength && candidates.Any(c => !c.Done); step++)
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                var rows = SearchRewards.Rows(next);
                var tokens = new long[k];
                for (int j = 0; j < k; j++)
                {
                    if (candidates[j].Done) continue; // its token is ignored; the row is scored as it ended
                    tokens[j] = DecodingSteps.SampleSoftmax(rows[j], options.Temperature, random[j]);
                    candidates[j].Accept((int)tokens[j]);
                }
                if (step == options.BlockLength - 1 || candidates.All(c => c.Done)) break; // the next block forks from the kept row
                next = session.Append(tokens);
                if (calls is not null) calls.LanguageModel += k;
            }
            var rewards = SearchRewards.Of(context, rm, Enumerable.Repeat(prompt, k).ToList(), candidates);
            int chosen = 0;
            for (int j = 1; j < k; j++)
                if (rewards[j] > rewards[chosen]) chosen = j;
            best = candidates[chosen];
            bestReward = rewards[chosen];
            if (calls is not null) calls.Tokens += best.Tokens.Count - accepted.Count;
            if (best.Done) break;
            // The block's last tokens have not been run yet: keep the winner and run its last token.
            next = session.KeepRows([chosen]);
            accepted.Clear();
            accepted.AddRange(best.Tokens);
            next = session.Append([best.Tokens[^1]]);
            if (calls is not null) calls.LanguageModel++;
        }
        return (best, bestReward);
    }
}
