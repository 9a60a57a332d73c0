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

    /// <summary>Batches decoded at once over <paramref name="prompts"/> prompts: <see cref="DecodingOptions.Decoders"/>, at most one per batch (at least one).</summary>
    public static int DecodersFor(DecodingOptions options, int prompts)
    {
        int batchSize = BatchSizeFor(options);
        return Math.Max(1, Math.Min(options.Decoders, (prompts + batchSize - 1) / batchSize));
    }

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
        int batches = (prompts.Count + batchSize - 1) / batchSize;

        // One batch of prompts, decoded alone: its rows, its seeds (by prompt index), its results.
        GenerationResult[] DecodeBatch(int batch, Action<int, string>? text)
        {
            int start = batch * batchSize;
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
                    Action<RowProgress>? stream = text is null ? null : r => text(r.PromptIndex, r.Text);
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
            return results.AsSpan(start, indices.Length).ToArray();
        }

        int decoders = DecodersFor(options, prompts.Count);
        if (decoders <= 1)
        {
            int done = 0;
            for (int batch = 0; batch < batches; batch++)
            {
                var finished = DecodeBatch(batch, onText);
                batchDone?.Invoke(finished);
                done += finished.Length;
                promptsDone?.Report(done);
            }
        }
        else
            InDecoders(batches, decoders, DecodeBatch, onText, batchDone, promptsDone);
        return results;
    }

    /// <summary>
    /// <paramref name="batches"/> decoded by <paramref name="decoders"/> threads at once, each taking the next batch when it
    /// finishes (<see cref="DecodingOptions.Decoders"/>). Finished batches are handed on in prompt order — a batch that ends
    /// before an earlier one waits for it — so a resumable output file receives exactly what one decoder would have written.
    /// After a failure no new batch starts; the batches already running finish, those before the failed one are still
    /// handed on, and the first failure is thrown (a <see cref="PargsException"/> first: it names the cause).
    /// WHY threads, not tasks: a decoding step blocks its thread while its requests are out, and thread-pool threads are
    /// what the HTTP answers complete on.
    /// </summary>
    static void InDecoders(int batches, int decoders, Func<int, Action<int, string>?, GenerationResult[]> decodeBatch,
        Action<int, string>? onText, Action<IReadOnlyList<GenerationResult>>? batchDone, IProgress<int>? promptsDone)
    {
        var gate = new object();
        var finished = new GenerationResult[]?[batches];
        int next = -1, handedOn = 0, done = 0;
        int handOnBefore = batches; // the first failed batch: nothing from it on is handed on
        var failures = new List<Exception>();
        Action<int, string>? text = onText is null ? null : (i, t) => { lock (gate) onText(i, t); };

        void Decode()
        {
            while (true)
            {
                lock (gate)
                    if (failures.Count > 0) return;
                int batch = Interlocked.Increment(ref next);
                if (batch >= batches) return;
                GenerationResult[] rows;
                try { rows = decodeBatch(batch, text); }
                catch (Exception e)
                {
                    lock (gate)
                    {
                        failures.Add(e);
                        handOnBefore = Math.Min(handOnBefore, batch);
                    }
                    return;
                }
                lock (gate)
                {
                    finished[batch] = rows;
                    // Hand on every batch now ready in order (this one, and later ones that were waiting for it).
                    while (handedOn < handOnBefore && finished[handedOn] is { } ready)
                    {
                        finished[handedOn] = null;
                        try { batchDone?.Invoke(ready); }
                        catch (Exception e)
                        {
                            failures.Add(e); // the output could not take it: nothing more is handed on
                            handOnBefore = handedOn;
                            return;
                        }
                        handedOn++;
                        done += ready.Length;
                        promptsDone?.Report(done);
                    }
                }
            }
        }

        var threads = Enumerable.Range(0, decoders).Select(i => new Thread(Decode) { Name = $"pargs-decoder-{i}", IsBackground = true }).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join();
        if (failures.Count > 0)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures.FirstOrDefault(f => f is PargsException) ?? failures[0]);
    }
}
