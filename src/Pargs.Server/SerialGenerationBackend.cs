using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Pargs.Decoding;
using Pargs.Rewards;

namespace Pargs.Server;

/// <summary>
/// The first <see cref="IGenerationBackend"/>: requests run one after another on one worker thread, each through
/// <see cref="TextGenerator.Generate"/> (its n choices as n rows of one batch), its text streamed from the
/// generator's per-row callback. This file is the only one of the server that knows the decoding API
/// (<see cref="DecodingOptions"/>, <see cref="DecodingMethod"/>); a continuous-batching engine replaces it whole.
/// One worker, because a model's forward and its KV caches are not shared between threads.
/// </summary>
public sealed class SerialGenerationBackend : IGenerationBackend
{
    readonly ServedModels models;
    readonly ServerLimits limits;
    readonly Channel<Action> jobs = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    readonly Thread worker;
    int waiting;

    public SerialGenerationBackend(ServedModels models, ServerLimits? limits = null)
    {
        this.models = models;
        this.limits = limits ?? new ServerLimits();
        worker = new Thread(Work) { IsBackground = true, Name = "pargs-generation" };
        worker.Start();
    }

    public IReadOnlyList<string> Methods { get; } = Enum.GetValues<DecodingMethod>().Select(m => m.Name()).ToArray();

    public int QueueDepth => Volatile.Read(ref waiting);

    void Work()
    {
        while (jobs.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            while (jobs.Reader.TryRead(out var job))
            {
                Interlocked.Decrement(ref waiting);
                job(); // every job catches its own exceptions and reports them to its caller
            }
    }

    Task<T> Enqueue<T>(Func<T> work, CancellationToken cancellation)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Increment(ref waiting);
        if (!jobs.Writer.TryWrite(() =>
            {
                if (cancellation.IsCancellationRequested) { done.TrySetCanceled(cancellation); return; }
                try { done.TrySetResult(work()); }
                catch (OperationCanceledException) when (cancellation.IsCancellationRequested) { done.TrySetCanceled(cancellation); }
                catch (Exception e) { done.TrySetException(e); }
            }))
        {
            Interlocked.Decrement(ref waiting);
            throw new ApiException(503, "The server is shutting down.", code: "server_shutting_down", type: "server_error");
        }
        return done.Task;
    }

    /// <summary>A request resolved into what the generator takes.</summary>
    sealed record Plan(ServedLanguageModel Model, IRewardModel? RewardModel, DecodingOptions Options, int[] PromptIds);

    public int Validate(GenerationRequest request) => Resolve(request).PromptIds.Length;

    Plan Resolve(GenerationRequest request)
    {
        var served = models.LanguageModel(request.Model);
        var lm = served.Model;
        int vocab = lm.Config.VocabSize;
        bool explicitMethod = request.Method is not null;
        string methodName = request.Method ?? (request.Temperature == 0 ? "greedy" : "topp");
        DecodingMethod method;
        try { method = DecodingMethods.Parse(methodName); }
        catch (PargsException) { throw ApiException.BadRequest($"Unknown method '{Shorten(methodName)}'; expected one of {string.Join(", ", Methods)}.", "method"); }

        // Honour or refuse: a setting the method would ignore is an error, not a silent no-op.
        void OnlyFor(object? value, string param, bool applies, string which)
        {
            if (value is not null && !applies)
                throw ApiException.BadRequest(explicitMethod
                    ? $"'{param}' has no effect with method '{methodName}' ({which})."
                    : $"'{param}' needs a decoding 'method' ({which}); without one the server samples with temperature and top_p.", param);
        }
        bool tokenwise = method.IsTokenwiseGuided();
        OnlyFor(request.K, "k", method is DecodingMethod.TopK or DecodingMethod.BestOfN || tokenwise, "it applies to topk, best-of-n, args, pargs, pargs-g");
        OnlyFor(request.W, "w", tokenwise, "it applies to args, pargs, pargs-g");
        OnlyFor(request.BestOf, "best_of", method == DecodingMethod.BestOfN, "it applies to best-of-n");
        OnlyFor(request.RewardModel, "reward_model", method.NeedsRewardModel(), "it applies to best-of-n, args, pargs, pargs-g");
        OnlyFor(request.TopP, "top_p", method == DecodingMethod.TopP, "it applies to topp, the default");
        if (explicitMethod) OnlyFor(request.Temperature, "temperature", method.Samples(), "it applies to the sampling methods topk, topp, best-of-n, pargs");

        int k = request.K ?? 10;
        if (k < 1 || k > Math.Min(limits.MaxK, vocab))
            throw ApiException.BadRequest($"'k' must be between 1 and {Math.Min(limits.MaxK, vocab)}, got {k}.", "k");
        double temperature = request.Temperature ?? 1.0;
        if (!(temperature >= 0 && temperature <= 2)) throw ApiException.BadRequest($"'temperature' must be between 0 and 2, got {temperature}.", "temperature");
        if (method.Samples() && temperature == 0)
            throw ApiException.BadRequest($"'temperature' must be positive for method '{methodName}' (it samples); use a greedy method for temperature 0.", "temperature");
        double topP = request.TopP ?? 1.0;
        if (!(topP > 0 && topP <= 1)) throw ApiException.BadRequest($"'top_p' must be in (0, 1], got {topP}.", "top_p");
        double w = request.W ?? 1.0;
        if (!double.IsFinite(w) || Math.Abs(w) > 1e6) throw ApiException.BadRequest($"'w' must be a finite number of at most 1e6 in size, got {w}.", "w");
        if (request.N < 1 || request.N > limits.MaxN) throw ApiException.BadRequest($"'n' must be between 1 and {limits.MaxN}, got {request.N}.", "n");
        int bestOf = request.BestOf ?? k;
        if (bestOf < 1) throw ApiException.BadRequest($"'best_of' must be at least 1, got {bestOf}.", "best_of");
        long sequences = method == DecodingMethod.BestOfN ? (long)request.N * bestOf : tokenwise ? (long)request.N * k : request.N;
        if (sequences > limits.MaxSequencesPerRequest)
            throw ApiException.BadRequest(method == DecodingMethod.BestOfN
                ? $"n × best_of = {sequences} sequences exceeds this server's limit of {limits.MaxSequencesPerRequest} per request."
                : $"n × k = {sequences} candidates per step exceeds this server's limit of {limits.MaxSequencesPerRequest} per request.", "n");
        if (request.MaxTokens is < 1 || request.MaxTokens > limits.MaxTokens)
            throw ApiException.BadRequest($"'max_tokens' must be between 1 and {limits.MaxTokens}, got {request.MaxTokens}.", "max_tokens");
        long seed = request.Seed ?? Random.Shared.Next();
        if (seed < int.MinValue || seed > int.MaxValue)
            throw ApiException.BadRequest($"'seed' must fit in 32 bits ({int.MinValue} to {int.MaxValue}), got {seed}.", "seed");

        IRewardModel? rm = null;
        if (method.NeedsRewardModel())
        {
            string? name = request.RewardModel ?? served.DefaultRewardModel ?? models.RewardModels.FirstOrDefault()?.Name;
            if (name is null) throw ApiException.BadRequest($"Method '{methodName}' needs a reward model and this server has none loaded.", "method");
            rm = models.RewardModel(name, "reward_model").Model;
        }

        if (request.Prompt.Length == 0) throw ApiException.BadRequest("The prompt is empty.", request.PromptParam);
        int[] ids = lm.Tokenizer!.Encode(request.Prompt, addBos: true);
        int context = lm.Config.MaxPositions;
        if (ids.Length >= context)
            throw new ApiException(400, $"This model's maximum context length is {context} tokens; the prompt has {ids.Length} tokens, which leaves none to generate.",
                request.PromptParam, "context_length_exceeded");
        int maxTokens = request.MaxTokens ?? Math.Min(limits.MaxTokens, context - ids.Length);
        if (ids.Length + maxTokens > context)
            throw new ApiException(400, $"This model's maximum context length is {context} tokens; the prompt has {ids.Length} tokens and max_tokens asks for {maxTokens} more.",
                "max_tokens", "context_length_exceeded");

        var options = new DecodingOptions
        {
            Method = method, K = k, W = w, Temperature = temperature, TopP = topP,
            N = method == DecodingMethod.BestOfN ? bestOf : null,
            Seed = (int)seed, MaxNewTokens = maxTokens, StopStrings = request.Stop,
            BatchSize = request.N, // the n choices decode as the rows of one batch
        };
        try
        {
            options.Validate(vocab);
            if (rm is not null) RewardRetokenizer.For(lm, rm); // an LM/RM pair that cannot be bridged fails here, not mid-stream
        }
        catch (PargsException e) { throw ApiException.BadRequest(e.Message); }
        return new Plan(served, rm, options, ids);
    }

    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation)
    {
        var plan = Resolve(request);
        var updates = Channel.CreateUnbounded<GenerationUpdate>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
        var run = Enqueue(() =>
        {
            try { Run(plan, request, updates.Writer, cancellation); updates.Writer.TryComplete(); }
            catch (Exception e) { updates.Writer.TryComplete(e); throw; }
            return true;
        }, cancellation);
        _ = run.ContinueWith(t => updates.Writer.TryComplete(t.Exception?.InnerException ?? (t.IsCanceled ? new OperationCanceledException(cancellation) : null)),
            TaskScheduler.Default);
        await foreach (var update in updates.Reader.ReadAllAsync(cancellation))
            yield return update;
    }

    static void Run(Plan plan, GenerationRequest request, ChannelWriter<GenerationUpdate> updates, CancellationToken cancellation)
    {
        var prompts = Enumerable.Repeat(request.Prompt, request.N).ToArray();
        var sent = new int[request.N];
        // Text that a stop string may still cut is held back: at most (longest stop − 1) characters, and a character
        // whose UTF-8 bytes are not all decoded yet (shown as U+FFFD until they are).
        int holdBack = Math.Max(0, request.Stop.Select(s => s.Length).DefaultIfEmpty(0).Max() - 1);
        var results = TextGenerator.Generate(plan.Model.Model, plan.RewardModel, prompts, plan.Options, onText: (row, text) =>
        {
            cancellation.ThrowIfCancellationRequested(); // a client that left stops its request at the next step
            int end = text.Length;
            while (end > 0 && text[end - 1] == '\uFFFD') end--;
            end -= holdBack;
            if (end > 0 && char.IsHighSurrogate(text[end - 1])) end--;
            if (end > sent[row])
            {
                updates.TryWrite(new GenerationUpdate(row, text[sent[row]..end]));
                sent[row] = end;
            }
        });
        foreach (var result in results)
        {
            int i = result.PromptIndex;
            string rest = result.Output.Length > sent[i] ? result.Output[sent[i]..] : "";
            string finish = result.FinishReason == "length" ? "length" : "stop"; // eos and stop strings are both OpenAI's "stop"
            updates.TryWrite(new GenerationUpdate(i, rest, finish, result.TokenIds.Length));
        }
    }

    public Task<float[]> ScoreAsync(string rewardModel, IReadOnlyList<string> texts, CancellationToken cancellation)
    {
        var served = models.RewardModel(rewardModel, "model");
        var rm = served.Model;
        int context = rm.Config.MaxPositions;
        var sequences = texts.Select((text, i) =>
        {
            if (text.Length == 0) throw ApiException.BadRequest($"input {i}: the text is empty.", "input");
            var ids = rm.Tokenizer!.Encode(text, addBos: true);
            if (ids.Length > context)
                throw new ApiException(400, $"input {i}: {ids.Length} tokens exceed the reward model's context of {context}.", "input", "context_length_exceeded");
            return ids;
        }).ToArray();
        return Enqueue(() => SequenceRewardBatches.Score(rm, sequences), cancellation);
    }

    static string Shorten(string text) => text.Length > 64 ? text[..64] + "…" : text;

    public void Dispose()
    {
        jobs.Writer.TryComplete();
        worker.Join(TimeSpan.FromSeconds(30));
    }
}
