using System.Diagnostics;
using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Rewards;

namespace Pargs.Decoding;

/// <summary>One prompt's output.</summary>
public sealed record GenerationResult(
    int PromptIndex, string Prompt, string Output, int[] TokenIds, string FinishReason, double Seconds, double? GuideReward);

/// <summary>
/// The library entry point: prompts in, continuations out, for any method. Tokenizes (BOS first), runs
/// prompts in batches whose rows finish independently, times each batch.
/// <code>
///   var lm = CausalLM.Load("model.gguf");
///   var rm = RewardModel.Load("rm-folder");
///   var outputs = TextGenerator.Generate(lm, rm, new[] { "Once upon a time" },
///       new DecodingOptions { Method = new PargsOptions { K = 10, W = 2 } });
/// </code>
/// </summary>
public static class TextGenerator
{
    public static IReadOnlyList<GenerationResult> Generate(CausalLM lm, IRewardModel? rm, IReadOnlyList<string> prompts,
        DecodingOptions options, IProgress<int>? promptsDone = null, Action<int, string>? onText = null)
        => Generate(Engines.For(lm, options.Engine), rm, prompts, options, promptsDone, onText);

    /// <summary>Prompts decoded together: the reference engine re-reads every row alone anyway, so one prompt at a time keeps its rows independent.</summary>
    public static int BatchSizeFor(DecodingOptions options) => options.Engine == DecodingEngine.Naive ? 1 : options.BatchSize;

    /// <param name="firstPromptIndex">The index of <paramref name="prompts"/>[0] in the whole job: a slice of a larger prompt
    /// list (a shard, or the rows a resumed run has not written yet) draws the same per-row random streams, and so gives
    /// the same outputs, as the whole list would.</param>
    /// <param name="batchDone">Called after each batch with its results (in prompt order), e.g. to append them to a
    /// resumable output file.</param>
    public static IReadOnlyList<GenerationResult> Generate(LanguageModelEngine engine, IRewardModel? rm, IReadOnlyList<string> prompts,
        DecodingOptions options, IProgress<int>? promptsDone = null, Action<int, string>? onText = null,
        int firstPromptIndex = 0, Action<IReadOnlyList<GenerationResult>>? batchDone = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstPromptIndex);
        var info = engine.Info;
        var tokenizer = info.Tokenizer ?? throw new PargsException($"{info.Source}: the model has no tokenizer (tokenizer.json missing?)");
        options.Validate(info.VocabSize);
        var method = options.Method.Method;
        if (method.RewardModelFor(rm) is { } guide)
            RewardRetokenizer.For(info, guide); // fails early when the vocabularies differ and cannot be bridged
        var encoded = prompts.Select((p, i) =>
        {
            if (string.IsNullOrEmpty(p)) throw new PargsException($"prompt {firstPromptIndex + i + 1} is empty");
            var ids = tokenizer.Encode(p, addBos: options.AddSpecialTokens);
            if (ids.Length + options.MaxNewTokens > info.MaxPositions)
                throw new PargsException($"prompt {firstPromptIndex + i + 1} has {ids.Length} tokens; with --max-new-tokens {options.MaxNewTokens} that exceeds the model's context of {info.MaxPositions}");
            return ids;
        }).ToArray();
        // Sized by the request (rows × samples × tokens), checked before the first batch allocates anything.
        engine.CheckFits(method.RewardModelFor(rm), options, prompts.Count, encoded.Select(e => e.Length).DefaultIfEmpty(0).Max());
        var context = info.RowContext(tokenizer, options.StopAtEos, options.StopStrings, options.MaxNewTokens);

        var results = new GenerationResult[prompts.Count];
        int batchSize = BatchSizeFor(options);
        int done = 0;
        for (int start = 0; start < prompts.Count; start += batchSize)
        {
            var indices = Enumerable.Range(firstPromptIndex + start, Math.Min(batchSize, prompts.Count - start)).ToArray();
            var batchPrompts = indices.Select(i => encoded[i - firstPromptIndex]).ToArray();
            var clock = Stopwatch.StartNew();
            IReadOnlyList<(RowProgress Row, double? Reward)> outcome;
            switch (options.Method)
            {
                case ISearchOptions search:
                    outcome = search.CreateSearch().Run(new SearchContext(engine, rm, options, context), batchPrompts, indices)
                        .Select(x => (x.Best, (double?)x.Reward)).ToList();
                    break;
                case ITokenwiseOptions tokenwise:
                    var rows = indices.Select((pi, i) => new RowProgress(context, pi, 0, batchPrompts[i])).ToList();
                    Action<RowProgress>? stream = onText is null ? null : r => onText(r.PromptIndex, r.Text);
                    new TokenwiseDecoder(engine, rm, tokenwise, options).Run(batchPrompts, rows, stream);
                    outcome = rows.Select(r => (r, (double?)null)).ToList();
                    break;
                default:
                    throw new PargsException($"{method.Name}: its options are neither tokenwise nor a search");
            }
            double seconds = clock.Elapsed.TotalSeconds / indices.Length; // batch time shared by its rows
            foreach (var (row, reward) in outcome)
            {
                int local = row.PromptIndex - firstPromptIndex;
                results[local] = new GenerationResult(row.PromptIndex, prompts[local], row.Text,
                    row.Tokens.ToArray(), row.FinishReason ?? "length", seconds, reward);
            }
            batchDone?.Invoke(results.AsSpan(start, indices.Length).ToArray());
            done += indices.Length;
            promptsDone?.Report(done);
        }
        return results;
    }
}
