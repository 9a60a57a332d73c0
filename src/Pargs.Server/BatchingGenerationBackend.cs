using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Models;
using Pargs.Models.Cpu;
using static TorchSharp.torch;
using Pargs.Rewards;

namespace Pargs.Server;

/// <summary>
/// The <see cref="IGenerationBackend"/> with continuous batching: one worker thread owns the models and steps a
/// <see cref="ContinuousDecoder"/> per (language model, reward model, method options); a request's n choices
/// join the matching decoder as rows at its next step and leave as each finishes, so concurrent requests share
/// every batched LM step and reward pass instead of waiting for each other. Each row has its own seeded stream
/// (seed, choice index), so a request's text does not depend on what else is running. Whole-sample methods
/// (Best-of-N) run between steps through <see cref="TextGenerator"/>. A client that goes away cancels its rows
/// at the next step. One worker owns the decoders: a decoding session's forward and KV cache are used by one thread at
/// a time. A second worker (the `pargs-rewards` thread, <see cref="ScoreRewards"/>) runs /v1/rewards' batched passes of causal reward models over
/// state only they use (the reward models' prefix caches, sessions and kept siblings), so a remote steering client's
/// reward requests are scored on the second core while the first steps its language-model requests; what the two
/// workers share is a reward model's weights, which concurrent sessions only read (each session has its own decode
/// kernel and buffers, as the local engine's split decoders have).
/// </summary>
public sealed class BatchingGenerationBackend : IGenerationBackend
{
    readonly ServedModels models;
    readonly ServerLimits limits;
    readonly Channel<Action> jobs = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    readonly Thread worker;
    int waiting;

    /// <param name="models">The models served.</param>
    /// <param name="limits">What one request may ask (null: the defaults).</param>
    /// <param name="ownRewardWorker">Whether /v1/rewards passes get their own worker thread; null = <see cref="RewardWorkerByDefault"/>.</param>
    public BatchingGenerationBackend(ServedModels models, ServerLimits? limits = null, bool? ownRewardWorker = null)
    {
        this.models = models;
        this.limits = limits ?? new ServerLimits();
        worker = new Thread(Work) { IsBackground = true, Name = "pargs-generation" };
        worker.Start();
        if (ownRewardWorker ?? RewardWorkerByDefault)
        {
            rewardWorker = new Thread(ScoreRewards) { IsBackground = true, Name = "pargs-rewards" };
            rewardWorker.Start();
        }
    }

    /// <summary>
    /// Whether /v1/rewards' prefix-cached passes run on their own worker thread (the default) or between the generation
    /// worker's steps, as before it had one; PARGS_REWARD_WORKER=0 chooses the latter (A/B runs of one build).
    /// </summary>
    public static bool RewardWorkerByDefault => Environment.GetEnvironmentVariable("PARGS_REWARD_WORKER") != "0";

    readonly Thread? rewardWorker;
    readonly Channel<RewardJob> rewardJobs = Channel.CreateUnbounded<RewardJob>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>
    /// The reward worker: blocks until a /v1/rewards request arrives, then scores every one that has arrived in batched
    /// passes (<see cref="RunPendingRewards"/>); requests that arrive during a pass wait for the next, so its passes
    /// batch as the generation worker's steps do.
    /// </summary>
    void ScoreRewards()
    {
        var pending = new List<RewardJob>();
        while (true)
        {
            var ready = rewardJobs.Reader.WaitToReadAsync().AsTask();
            BlockingWait.Until(ready);
            if (!ready.GetAwaiter().GetResult()) return;
            while (rewardJobs.Reader.TryRead(out var job))
            {
                Interlocked.Decrement(ref waiting);
                pending.Add(job);
            }
            RunPendingRewards(pending);
            if (times is not null) Volatile.Write(ref rewardWorkerCpuSeconds, ThreadCpuClock.Seconds());
        }
    }

    double rewardWorkerCpuSeconds;

    public IReadOnlyList<string> Methods => DecodingMethods.All.Select(m => m.Name).ToArray();

    public int QueueDepth => Volatile.Read(ref waiting);

    /// <summary>
    /// The worker: take what has arrived (blocking only when no row is running), then one step of every decoder
    /// with rows. A job either joins rows (tokenwise methods) or does its whole work (search methods, scoring).
    /// </summary>
    /// <summary>
    /// Blocks until a job arrives (false: the queue was completed), without Task.Wait's spinning: an idle worker's spinning
    /// between step requests took about a sixth of a remote steering run's CPU on 2 cores.
    /// </summary>
    bool WaitForJobs()
    {
        var ready = jobs.Reader.WaitToReadAsync().AsTask();
        BlockingWait.Until(ready);
        return ready.GetAwaiter().GetResult();
    }

    void Work()
    {
        while (true)
        {
            if (!decoders.Values.Any(b => b.Decoder.Count > 0) && !WaitForJobs()) return;
            var admitted = times is null ? default : StepPhaseTimes.Now();
            while (jobs.Reader.TryRead(out var job))
            {
                Interlocked.Decrement(ref waiting);
                job(); // every job catches its own exceptions and reports them to its caller
            }
            times?.Add(StepPhaseTimes.Phase.Admit, ref admitted);
            foreach (var (key, batch) in decoders.ToList())
            {
                if (batch.Decoder.Count == 0) continue; // idle, kept for the next request
                batch.CancelLeavers();
                try
                {
                    Interlocked.Increment(ref steps);
                    Interlocked.Add(ref rowSteps, batch.Decoder.Count);
                    foreach (var left in batch.Decoder.Step()) batch.Leave(left);
                }
                catch (Exception e)
                {
                    batch.Fail(e); // a broken step fails the requests of that batch only
                    decoders.Remove(key);
                    continue;
                }
                if (batch.Decoder.Count == 0) batch.IdleSince = Environment.TickCount64;
            }
            RunPendingRewards(pendingRewards);
            RetireIdleDecoders();
            if (times is not null) Volatile.Write(ref workerCpuSeconds, ThreadCpuClock.Seconds());
        }
    }

    /// <summary>
    /// PARGS_SERVE_PROFILE=1: every decoder sums its steps' phase times here (the worker's alone), and /metrics reports
    /// them with the worker thread's CPU time (pargs_worker_*), so a benchmark can tell where a step's time goes.
    /// </summary>
    readonly StepPhaseTimes? times = Environment.GetEnvironmentVariable("PARGS_SERVE_PROFILE") == "1" ? new StepPhaseTimes() : null;
    double workerCpuSeconds;

    /// <summary>
    /// A decoder whose rows all left stays for a while: its sessions, their decode kernels and the reward model's scorer
    /// are ready for the next request of the same kind (a remote engine's step requests come back every few milliseconds,
    /// each a one-token row). Retired after <see cref="IdleDecoderSeconds"/> idle, and beyond <see cref="MaxIdleDecoders"/>
    /// (longest idle first).
    /// </summary>
    void RetireIdleDecoders()
    {
        if (decoders.Count == 0) return;
        long now = Environment.TickCount64;
        var idle = decoders.Where(d => d.Value.Decoder.Count == 0).OrderBy(d => d.Value.IdleSince).ToList();
        for (int i = 0; i < idle.Count; i++)
            if (idle.Count - i > MaxIdleDecoders || now - idle[i].Value.IdleSince > IdleDecoderSeconds * 1000)
            {
                idle[i].Value.Decoder.Dispose();
                decoders.Remove(idle[i].Key);
            }
    }

    /// <summary>
    /// Prompt tokens a decoder prefills per step (<see cref="ContinuousDecoder.MaxJoinTokensPerStep"/>): 64 requests that
    /// arrive together join over several steps instead of holding every running row's next token for all their prefills.
    /// 256 ≈ sixteen 16-token prompts: a join step costs at most about as much as a decoding step of 16 PARGS rows (k = 10).
    /// </summary>
    const int JoinTokensPerStep = 256;

    const int MaxIdleDecoders = 8;
    const int IdleDecoderSeconds = 30;

    /// <summary>Requests that decode together: same language model, reward model and method options.</summary>
    sealed record BatchKey(ServedLanguageModel Model, IRewardModel? RewardModel, IMethodOptions Method);

    readonly Dictionary<BatchKey, RunningBatch> decoders = new();

    /// <summary>One decoder and the rows of the requests riding in it, with where each row's text goes.</summary>
    sealed class RunningBatch(ContinuousDecoder decoder)
    {
        public ContinuousDecoder Decoder { get; } = decoder;
        /// <summary>When its last row left (Environment.TickCount64), for retiring idle decoders.</summary>
        public long IdleSince { get; set; }
        readonly Dictionary<RowProgress, (RunningRequest Request, int Choice)> rows = new(ReferenceEqualityComparer.Instance);

        public void Add(RunningRequest request, int choice, RowProgress row) => rows[row] = (request, choice);

        public void CancelLeavers()
        {
            foreach (var (row, (request, _)) in rows)
                if (request.Cancellation.IsCancellationRequested) Decoder.Cancel(row);
        }

        public void Leave(RowProgress row)
        {
            if (!rows.Remove(row, out var owner)) return;
            owner.Request.Finish(owner.Choice, row);
        }

        public void Fail(Exception e)
        {
            foreach (var (request, _) in rows.Values.Distinct()) request.Updates.TryComplete(e);
            rows.Clear();
            Decoder.Dispose();
        }
    }

    /// <summary>A request's n choices in flight: streams each choice's new text and completes after the last one.</summary>
    sealed class RunningRequest(GenerationRequest request, ChannelWriter<GenerationUpdate> updates, CancellationToken cancellation)
    {
        readonly int[] sent = new int[request.N];
        readonly int[] sentLogProbs = new int[request.N]; // entries of logProbs[choice] already handed out with an update
        readonly List<TokenLogProbs>?[] logProbs = Enumerable.Range(0, request.N).Select(_ => request.LogProbs is null ? null : new List<TokenLogProbs>()).ToArray();

        /// <summary>Records the raw distribution choice <paramref name="choice"/>'s token was chosen from (null when not asked for).</summary>
        public DistributionObserver? LogProbsOf(int choice) => logProbs[choice] is { } list
            ? (token, distribution) => list.Add(new TokenLogProbs((int)token, distribution[(int)token], LogProbsJson.Top(distribution, request.LogProbs!.Value)))
            : null;
        int open = request.N;
        // Text that a stop string may still cut is held back: at most (longest stop − 1) characters, and a character
        // whose UTF-8 bytes are not all decoded yet (shown as U+FFFD until they are).
        readonly int holdBack = Math.Max(0, request.Stop.Select(s => s.Length).DefaultIfEmpty(0).Max() - 1);

        public ChannelWriter<GenerationUpdate> Updates => updates;
        public CancellationToken Cancellation => cancellation;

        public void Stream(int choice, string text)
        {
            int end = text.Length;
            while (end > 0 && text[end - 1] == '\uFFFD') end--;
            end -= holdBack;
            if (end > 0 && char.IsHighSurrogate(text[end - 1])) end--;
            if (end > sent[choice])
            {
                updates.TryWrite(new GenerationUpdate(choice, text[sent[choice]..end]) { LogProbs = NewLogProbs(choice) });
                sent[choice] = end;
            }
        }

        /// <summary>
        /// The log-probabilities recorded since choice <paramref name="choice"/>'s last update (null when not asked for): an
        /// update carries those of the tokens accepted up to it, so a stream's chunks, joined, hold every token's once.
        /// </summary>
        IReadOnlyList<TokenLogProbs>? NewLogProbs(int choice)
        {
            if (logProbs[choice] is not { } list) return null;
            var fresh = list.GetRange(sentLogProbs[choice], list.Count - sentLogProbs[choice]);
            sentLogProbs[choice] = list.Count;
            return fresh;
        }

        public void Finish(int choice, RowProgress row)
        {
            if (cancellation.IsCancellationRequested) { updates.TryComplete(new OperationCanceledException(cancellation)); return; }
            Finish(choice, row.Text, row.FinishReason ?? "length", row.Tokens.Count);
        }

        public void Finish(int choice, string output, string finishReason, int tokens)
        {
            string rest = output.Length > sent[choice] ? output[sent[choice]..] : "";
            string finish = finishReason == "length" ? "length" : "stop"; // eos and stop strings are both OpenAI's "stop"
            updates.TryWrite(new GenerationUpdate(choice, rest, finish, tokens) { LogProbs = NewLogProbs(choice) });
            if (--open == 0) updates.TryComplete();
        }
    }

    /// <summary>
    /// For tests: a job that holds the generation worker until <paramref name="release"/> completes, queued as a request's
    /// job is. The task returned completes once the worker has started it — from then on the worker is busy, for certain.
    /// </summary>
    internal Task HoldGenerationWorker(Task release)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Enqueue(() => { started.SetResult(); release.GetAwaiter().GetResult(); return true; }, CancellationToken.None);
        return started.Task;
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
            throw ShuttingDown();
        }
        return done.Task;
    }

    static ApiException ShuttingDown() => new(503, "The server is shutting down.", code: "server_shutting_down", type: "server_error");

    /// <summary>A request resolved into what the generator takes.</summary>
    sealed record Plan(ServedLanguageModel Model, IRewardModel? RewardModel, DecodingOptions Options, int[] PromptIds);

    public ValidatedRequest Validate(GenerationRequest request)
    {
        var plan = Resolve(request);
        return new ValidatedRequest(request, plan.PromptIds.Length, plan);
    }

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
        // The "it applies to …" text is built only for the error: joining the methods' names for each of six settings was
        // 3–4 % of the thread pool's CPU per remote step request (s14-wire's profile).
        void OnlyFor(object? value, string param, bool applies, Func<string> which)
        {
            if (value is not null && !applies)
                throw ApiException.BadRequest(explicitMethod
                    ? $"'{param}' has no effect with method '{methodName}' ({which()})."
                    : $"'{param}' needs a decoding 'method' ({which()}); without one the server samples with temperature and top_p.", param);
        }
        string Readers(MethodParameter p) => "it applies to " + string.Join(", ", DecodingMethods.All.Where(m => m.Reads(p)).Select(m => m.Name));
        OnlyFor(request.K, "k", method.Reads(MethodParameter.K), () => Readers(MethodParameter.K));
        OnlyFor(request.W, "w", method.Reads(MethodParameter.W), () => Readers(MethodParameter.W));
        OnlyFor(request.BestOf, "best_of", method.Reads(MethodParameter.N), () => Readers(MethodParameter.N));
        OnlyFor(request.RewardModel, "reward_model", method.NeedsRewardModel,
            () => "it applies to " + string.Join(", ", DecodingMethods.All.Where(m => m.NeedsRewardModel).Select(m => m.Name)));
        OnlyFor(request.TopP, "top_p", method.Reads(MethodParameter.TopP), () => Readers(MethodParameter.TopP) + ", the default");
        if (explicitMethod) OnlyFor(request.Temperature, "temperature", method.Reads(MethodParameter.Temperature), () => Readers(MethodParameter.Temperature));

        int k = request.K ?? 10;
        if (k < 1 || k > Math.Min(limits.MaxK, vocab))
            throw ApiException.BadRequest($"'k' must be between 1 and {Math.Min(limits.MaxK, vocab)}, got {k}.", "k");
        double temperature = request.Temperature ?? 1.0;
        if (!(temperature >= 0 && temperature <= 2)) throw ApiException.BadRequest($"'temperature' must be between 0 and 2, got {temperature}.", "temperature");
        if (method.Samples && temperature == 0)
            throw ApiException.BadRequest($"'temperature' must be positive for method '{methodName}' (it samples); use a greedy method for temperature 0.", "temperature");
        double topP = request.TopP ?? 1.0;
        if (!(topP > 0 && topP <= 1)) throw ApiException.BadRequest($"'top_p' must be in (0, 1], got {topP}.", "top_p");
        double w = request.W ?? 1.0;
        if (!double.IsFinite(w) || Math.Abs(w) > 1e6) throw ApiException.BadRequest($"'w' must be a finite number of at most 1e6 in size, got {w}.", "w");
        if (request.N < 1 || request.N > limits.MaxN) throw ApiException.BadRequest($"'n' must be between 1 and {limits.MaxN}, got {request.N}.", "n");
        int bestOf = request.BestOf ?? k;
        if (bestOf < 1) throw ApiException.BadRequest($"'best_of' must be at least 1, got {bestOf}.", "best_of");
        long sequences = method.Reads(MethodParameter.N) ? (long)request.N * bestOf : method.IsTokenwiseGuided ? (long)request.N * k : request.N;
        if (sequences > limits.MaxSequencesPerRequest)
            throw ApiException.BadRequest(method.Reads(MethodParameter.N)
                ? $"n × best_of = {sequences} sequences exceeds this server's limit of {limits.MaxSequencesPerRequest} per request."
                : $"n × k = {sequences} candidates per step exceeds this server's limit of {limits.MaxSequencesPerRequest} per request.", "n");
        if (request.MaxTokens is < 1 || request.MaxTokens > limits.MaxTokens)
            throw ApiException.BadRequest($"'max_tokens' must be between 1 and {limits.MaxTokens}, got {request.MaxTokens}.", "max_tokens");
        long seed = request.Seed ?? Random.Shared.Next();
        if (seed < int.MinValue || seed > int.MaxValue)
            throw ApiException.BadRequest($"'seed' must fit in 32 bits ({int.MinValue} to {int.MaxValue}), got {seed}.", "seed");

        IRewardModel? rm = null;
        if (method.NeedsRewardModel)
        {
            string? name = request.RewardModel ?? served.DefaultRewardModel ?? models.RewardModels.FirstOrDefault()?.Name;
            if (name is null) throw ApiException.BadRequest($"Method '{methodName}' needs a reward model and this server has none loaded.", "method");
            rm = models.RewardModel(name, "reward_model").Model;
        }

        if (request.LogProbs is not null && method.Reads(MethodParameter.N))
            throw ApiException.BadRequest($"log-probabilities are reported for methods that choose token by token; '{methodName}' picks among whole samples.", "logprobs");
        int[] ids;
        if (request.PromptIds is { } given)
        {
            if (method.Reads(MethodParameter.N))
                throw ApiException.BadRequest($"a token-id prompt is taken by methods that choose token by token; '{methodName}' needs a text prompt.", request.PromptParam);
            // Token ids are used exactly as sent (no BOS added), as vLLM takes them.
            for (int i = 0; i < given.Length; i++)
                if (given[i] >= vocab) throw ApiException.BadRequest($"'prompt[{i}]' is token id {given[i]}, beyond the vocabulary of {vocab} tokens.", request.PromptParam);
            ids = given;
        }
        else
        {
            if (request.Prompt.Length == 0) throw ApiException.BadRequest("The prompt is empty.", request.PromptParam);
            ids = lm.Tokenizer!.Encode(request.Prompt, addBos: request.AddSpecialTokens);
        }
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
            Method = method.Options(new MethodSettings { K = k, W = w, Temperature = temperature, TopP = topP, N = bestOf }),
            Seed = (int)seed, MaxNewTokens = maxTokens, StopStrings = request.Stop,
            BatchSize = request.N, // the n choices decode as the rows of one batch
            AddSpecialTokens = request.AddSpecialTokens,
        };
        try
        {
            options.Validate(vocab);
            if (rm is not null) RewardRetokenizer.For(lm.Info, rm); // an LM/RM pair that cannot be bridged fails here, not mid-stream
        }
        catch (PargsException e) { throw ApiException.BadRequest(e.Message); }
        return new Plan(served, rm, options, ids);
    }

    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(ValidatedRequest validated, [EnumeratorCancellation] CancellationToken cancellation)
    {
        var plan = validated.Resolved as Plan ?? throw new ArgumentException("The request was not validated by this backend.", nameof(validated));
        var request = validated.Request;
        var updates = Channel.CreateUnbounded<GenerationUpdate>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
        var running = new RunningRequest(request, updates.Writer, cancellation);
        var started = Enqueue(() =>
        {
            try { Start(plan, request, running); }
            catch (Exception e) { updates.Writer.TryComplete(e); throw; }
            return true;
        }, cancellation);
        // Only a failed or cancelled start needs this: NotOnRanToCompletion drops it when the start succeeds instead of queueing
        // a thread-pool work item per request that does nothing.
        _ = started.ContinueWith(t =>
        {
            if (t.IsFaulted || t.IsCanceled) updates.Writer.TryComplete(t.Exception?.InnerException ?? new OperationCanceledException(cancellation));
        }, CancellationToken.None, TaskContinuationOptions.NotOnRanToCompletion, TaskScheduler.Default);
        await foreach (var update in updates.Reader.ReadAllAsync(cancellation))
            yield return update;
    }

    /// <summary>On the worker: a tokenwise request's choices join their batch; a search runs to the end here.</summary>
    void Start(Plan plan, GenerationRequest request, RunningRequest running)
    {
        var lm = plan.Model.Model;
        var options = plan.Options;
        if (options.Method is not ITokenwiseOptions tokenwise)
        {
            var prompts = Enumerable.Repeat(request.Prompt, request.N).ToArray();
            var results = TextGenerator.Generate(lm, plan.RewardModel, prompts, options, onText: (row, text) =>
            {
                running.Cancellation.ThrowIfCancellationRequested(); // a client that left stops its request at the next step
                running.Stream(row, text);
            });
            foreach (var r in results) running.Finish(r.PromptIndex, r.Output, r.FinishReason, r.TokenIds.Length);
            return;
        }
        var key = new BatchKey(plan.Model, plan.RewardModel, tokenwise);
        if (!decoders.TryGetValue(key, out var batch))
        {
            int capacity = Math.Min(lm.Config.MaxPositions, plan.PromptIds.Length + options.MaxNewTokens + 1);
            batch = new RunningBatch(new ContinuousDecoder(LanguageModelEngine.Cached(lm, PrefixCacheOf(plan.Model)), plan.RewardModel, tokenwise, capacity, times: times)
            {
                MaxJoinTokensPerStep = JoinTokensPerStep,
            });
            decoders[key] = batch;
        }
        var context = lm.Info.RowContext(lm.Tokenizer!, options.StopAtEos, options.StopStrings, options.MaxNewTokens);
        for (int choice = 0; choice < request.N; choice++)
        {
            int c = choice;
            var row = new RowProgress(context, c, 0, plan.PromptIds);
            batch.Add(running, c, row);
            // The stream of choice c of a request is the stream of prompt c of a TextGenerator run (seed, c, 0).
            batch.Decoder.Join(plan.PromptIds, row, DecodingSteps.RowRandom(options.Seed, c, 0), r => running.Stream(c, r.Text), running.LogProbsOf(c));
        }
    }

    public Task<float[]> ScoreAsync(string rewardModel, IReadOnlyList<RewardInput> inputs, CancellationToken cancellation)
    {
        var served = models.RewardModel(rewardModel, "model");
        var rm = served.Model;
        for (int i = 0; i < inputs.Count; i++)
            if (inputs[i].Ids is null && inputs[i].Text.Length + (inputs[i].Response?.Length ?? 0) == 0) throw ApiException.BadRequest($"input {i}: the text is empty.", "input");
        if (rm is EncoderRewardModel encoder)
        {
            if (inputs.Select((input, i) => (input, i)).FirstOrDefault(p => p.input.Ids is not null) is { input: not null } withIds)
                throw ApiException.BadRequest($"input {withIds.i}: token ids are read by a causal reward model; the encoder reward model '{rewardModel}' takes text.", "input");
            // An encoder reads text: a plain text as one sequence, a pair as the model was trained to read it (pargs_input).
            var encoded = inputs.Select((input, i) =>
            {
                try
                {
                    return input.Response is null
                        ? CheckedLength(encoder, encoder.EncoderTokenizer.Encode(input.Text, null, addSpecialTokens: true), i)
                        : encoder.Encode(input.Text, input.Response);
                }
                catch (PargsException e) { throw new ApiException(400, $"input {i}: {e.Message}", "input", "context_length_exceeded"); }
            }).ToList();
            return Enqueue(() => encoder.Score(encoded), cancellation);
        }
        int context = rm.Config.MaxPositions;
        var sequences = inputs.Select((input, i) =>
        {
            if (input.Ids is { } given)
            {
                int vocab = rm.Config.VocabSize;
                int outside = Array.FindIndex(given, id => id >= vocab);
                if (outside >= 0 && outside < input.PrefixLength)
                    throw ApiException.BadRequest($"prefix: token id {given[outside]} (at {outside}) is outside the reward model's vocabulary of {vocab}.", "prefix");
                if (outside >= 0)
                    throw ApiException.BadRequest($"input {i}: token id {given[outside]} (at {outside - input.PrefixLength}) is outside the reward model's vocabulary of {vocab}.", "input");
            }
            // A causal reward model reads prompt + response as one text, as trained (BOS first); token ids as given.
            var ids = input.Ids ?? rm.Tokenizer!.Encode(input.Text + input.Response, addBos: true);
            if (ids.Length > context)
                throw new ApiException(400, $"input {i}: {ids.Length} tokens exceed the reward model's context of {context}.", "input", "context_length_exceeded");
            return ids;
        }).ToArray();
        if (rm is RewardModel causal && causal.SkippedPadId is null && limits.PrefixCacheBytes > 0)
        {
            var job = new RewardJob(causal, served.Name, sequences, cancellation);
            if (rewardWorker is not null)
            {
                Interlocked.Increment(ref waiting);
                if (!rewardJobs.Writer.TryWrite(job))
                {
                    Interlocked.Decrement(ref waiting);
                    throw ShuttingDown();
                }
            }
            else
                Enqueue(() => { pendingRewards.Add(job); return true; }, cancellation)
                    .ContinueWith(_ => job.Done.TrySetCanceled(cancellation), CancellationToken.None, TaskContinuationOptions.NotOnRanToCompletion, TaskScheduler.Default);
            return job.Done.Task;
        }
        return Enqueue(() => SequenceRewardBatches.Score(rm, sequences), cancellation);
    }

    /// <summary>A /v1/rewards request waiting for the worker's next batched reward pass.</summary>
    sealed record RewardJob(RewardModel Model, string Name, int[][] Sequences, CancellationToken Cancellation)
    {
        public TaskCompletionSource<float[]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    readonly List<RewardJob> pendingRewards = new(); // the generation worker's, without a reward worker (PARGS_REWARD_WORKER=0)
    const int MaxRewardRowsPerPass = 256;

    /// <summary>
    /// On the reward worker (or the generation worker, without one), after taking what arrived: every waiting /v1/rewards
    /// request, batched per reward model; empties <paramref name="pending"/>. Everything a pass touches — the reward models'
    /// prefix caches, sessions and kept siblings — is this thread's alone.
    /// </summary>
    void RunPendingRewards(List<RewardJob> pending)
    {
        if (pending.Count == 0) return;
        var jobs = pending.Where(j => !j.Cancellation.IsCancellationRequested || !j.Done.TrySetCanceled(j.Cancellation)).ToList();
        pending.Clear();
        // Per reward model, in passes of at most MaxRewardRowsPerPass texts (each text is a row with its own copy of its prefix).
        var passes = new List<List<RewardJob>>();
        foreach (var group in jobs.GroupBy(j => j.Model, ReferenceEqualityComparer.Instance))
            foreach (var job in group)
            {
                if (passes.Count == 0 || passes[^1][0].Model != job.Model || passes[^1].Sum(j => j.Sequences.Length) + job.Sequences.Length > MaxRewardRowsPerPass)
                    passes.Add(new List<RewardJob>());
                passes[^1].Add(job);
            }
        foreach (var list in passes)
        {
            Interlocked.Increment(ref rewardPasses);
            Interlocked.Add(ref rewardPassRequests, list.Count);
            try
            {
                var rewards = SharedPrefixRewards(list[0].Model, list[0].Name, list.Select(j => j.Sequences).ToList());
                for (int i = 0; i < list.Count; i++) list[i].Done.TrySetResult(rewards[i]);
            }
            catch (Exception e)
            {
                foreach (var job in list) job.Done.TrySetException(e);
            }
        }
    }

    /// <summary>
    /// On the worker: the rewards of several requests' texts, each request's texts sharing a prefix — a remote steering
    /// client's k candidates of one row, whose text is prompt + sequence so far + candidate — read at each text's last
    /// token. Each request's shared prefix is a row that starts from the longest prefix the reward model's prefix cache
    /// holds (the previous step's shared prefix, which this step's extends by the chosen candidate) and is kept for the
    /// next step; then every request's tails run as rows over their prefix (as siblings when each is one token), all
    /// requests in one forward. Equal to
    /// whole-sequence scoring (<see cref="SequenceRewardBatches"/>) up to the order of float sums; a request whose texts
    /// share nothing goes there.
    /// </summary>
    float[][] SharedPrefixRewards(RewardModel rm, string name, IReadOnlyList<int[][]> requests)
    {
        var results = new float[requests.Count][];
        var common = new int[requests.Count];
        for (int r = 0; r < common.Length; r++)
        {
            // The ids all of a request's texts start with, each keeping ≥ 1 token of its own (one vectorized compare per
            // text: a position-by-position All over the k texts was ~2 % of the reward worker).
            var sequences = requests[r];
            if (sequences.Length == 0) continue; // shares nothing
            int length = int.MaxValue;
            foreach (var sequence in sequences) length = Math.Min(length, sequence.Length - 1);
            var first = sequences[0].AsSpan(0, Math.Max(0, length));
            for (int i = 1; i < sequences.Length && length > 0; i++) length = Math.Min(length, first.CommonPrefixLength(sequences[i]));
            common[r] = Math.Max(0, length);
        }
        var shared = Enumerable.Range(0, requests.Count).Where(r => common[r] > 0).ToArray();
        foreach (int r in Enumerable.Range(0, requests.Count).Where(r => common[r] == 0)) results[r] = SequenceRewardBatches.Score(rm, requests[r]);
        if (shared.Length == 0) return results;

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var clock = rewardTimes is null ? default : RewardPassTimes.Now();
        var cache = rewardPrefixCaches.GetOrAdd(name, key => new PrefixCache(limits.PrefixCacheBytes));
        var prefixes = shared.Select(r => requests[r][0][..common[r]]).ToArray();
        int capacity = shared.Max(r => requests[r].Max(s => s.Length)) + 1;
        // One session per reward model, emptied after each use: its decode kernel is built once, not per request.
        if (!rewardSessions.TryGetValue(rm, out var session)) rewardSessions[rm] = session = new BatchSession(rm.Backbone, 0, capacity);
        int k = requests[shared[0]].Length;
        bool siblingStep = shared.All(r => requests[r].Length == k && requests[r].All(s => s.Length == common[r] + 1));
        if (siblingStep && session.TakesRowSiblings((long)shared.Length * k))
        {
            var candidates = shared.SelectMany(r => requests[r].Select(s => (long)s[^1])).ToArray();
            var rewards = ResidentSiblingRewards(rm, name, session, cache, prefixes, candidates, k, capacity, ref clock);
            for (int i = 0; i < shared.Length; i++) results[shared[i]] = rewards[(i * k)..((i + 1) * k)];
            return results;
        }
        try
        {
            var found = prefixes.Select(cache.Find).ToArray();
            var siblingsKept = keptSiblings.GetOrAdd(name, key => new KeptRewardSiblings(Math.Max(limits.PrefixCacheBytes / 4, 1)));
            // The usual step: each prefix is a kept one plus the candidate its client chose, scored (as a sibling) by the
            // last pass — its keys/values are copied from there, no forward (KeptRewardSiblings).
            var chosen = found.All(f => f.Cache is not null) ? prefixes.Select((p, i) => found[i].Length == p.Length - 1 ? siblingsKept.Find(p) : null).ToArray() : null;
            rewardTimes?.Add(RewardPassTimes.Phase.Find, ref clock);
            if (chosen is not null && chosen.All(c => c is not null))
            {
                // Room for the chosen candidate and the next candidates (not a whole sequence more: the cache is kept as it is).
                var joined = KvCache.StackRows(found.Select(f => (f.Cache, f.Row, f.FirstSlot, f.Length)).ToArray(), shared.Max(r => requests[r].Length) + 1);
                try { joined.AppendSlots(chosen.Select(c => (c!.Value.Cache, c.Value.Row, c.Value.Slot)).ToList()); }
                catch { joined.Dispose(); throw; }
                session.AddCachedRows(joined);
                siblingsKept.Used(chosen.Select(c => c!.Value.Entry));
            }
            else AddFromPrefixCache(session, prefixes, found, capacity);
            rewardTimes?.Add(RewardPassTimes.Phase.Join, ref clock);
            void KeepPrefixes() { for (int i = 0; i < prefixes.Length; i++) cache.Add(prefixes[i], session.Cache.CompactRow(i)); }
            if (!siblingStep)
            {
                KeepPrefixes();
                rewardTimes?.Add(RewardPassTimes.Phase.Keep, ref clock);
            }
            else
            {
                // One token after each prefix (a candidate per text, the usual step): the k candidates of a row are siblings
                // over its prefix in one forward (BatchSession.Siblings, as the local scorer runs them) — no copy per text.
                var candidates = shared.SelectMany(r => requests[r].Select(s => (long)s[^1])).ToArray();
                var siblings = Scores(rm, session.Siblings(tensor(candidates, shared.Length, k)));
                for (int i = 0; i < shared.Length; i++) results[shared[i]] = siblings[(i * k)..((i + 1) * k)];
                rewardTimes?.Add(RewardPassTimes.Phase.Forward, ref clock);
                siblingsKept.Keep(prefixes, candidates, k, session.Cache.SiblingSlots(k)); // the next step's prefix is one of them
                // No copy out per prefix row where the cache is mostly the prefixes: the next step's request starts from its row
                // here (the candidates' slots past the prefixes are never read through the prefix cache).
                if (cache.Shareable(session.Cache, prefixes.Select(p => p.Length).ToArray())) cache.AddAll(session.DetachCache(), prefixes);
                else KeepPrefixes();
                rewardTimes?.Add(RewardPassTimes.Phase.Keep, ref clock);
                return results;
            }
            // Each request's texts as rows over its prefix row, all in one forward.
            var rows = shared.SelectMany((r, i) => Enumerable.Repeat((long)i, requests[r].Length)).ToArray();
            session.SelectRows(rows);
            var tails = shared.SelectMany(r => requests[r].Select(s => s[common[r]..])).ToList();
            var rewards = Scores(rm, session.Prefill(tails)); // each tail's last token
            rewardTimes?.Add(RewardPassTimes.Phase.Forward, ref clock);
            int at = 0;
            foreach (int r in shared)
            {
                results[r] = rewards[at..(at + requests[r].Length)];
                at += requests[r].Length;
            }
            return results;
        }
        finally { session.SelectRows([]); }
    }

    /// <summary>
    /// The usual step of a steering client, when the reward model's decode kernel reads rows where they lie: each request is
    /// one row's k one-token candidates (<paramref name="candidates"/>, k per prefix) over its prefix. A row kept from its
    /// last request (<see cref="ResidentRewardRows"/>) commits its chosen candidate in place; a row seen for the first time
    /// (or dropped from the budget) starts from the longest prefix the prefix cache holds, the rest prefilled, into a cache
    /// of its own. Then one sibling forward reads every row's cache in place, and each row is kept with its new candidates.
    /// </summary>
    float[] ResidentSiblingRewards(RewardModel rm, string name, BatchSession session, PrefixCache cache, int[][] prefixes, long[] candidates,
                                   int k, int capacity, ref RewardPassTimes.Stamp clock)
    {
        // The kept rows are most of what a steering client's reward model holds now (its prefix cache keeps the prompts of
        // rows seen for the first time): they get a prefix cache's budget of their own.
        var resident = residentRows.GetOrAdd(name, key => new ResidentRewardRows(limits.PrefixCacheBytes));
        var rows = new KvCache?[prefixes.Length];
        try
        {
            for (int i = 0; i < prefixes.Length; i++) rows[i] = resident.Take(prefixes[i]);
            rewardTimes?.Add(RewardPassTimes.Phase.Find, ref clock);
            var missing = Enumerable.Range(0, prefixes.Length).Where(i => rows[i] is null).ToArray();
            if (missing.Length > 0)
            {
                try
                {
                    var missingPrefixes = missing.Select(i => prefixes[i]).ToArray();
                    AddFromPrefixCache(session, missingPrefixes, missingPrefixes.Select(cache.Find).ToArray(), capacity);
                    for (int j = 0; j < missing.Length; j++)
                    {
                        cache.Add(prefixes[missing[j]], session.Cache.CompactRow(j)); // for other rows over the same prompt
                        rows[missing[j]] = session.Cache.CompactRow(j);
                    }
                }
                finally { session.SelectRows([]); }
            }
            rewardTimes?.Add(RewardPassTimes.Phase.Join, ref clock);
            var rewards = Scores(rm, session.SiblingsOfRows(rows!, tensor(candidates, prefixes.Length, k)));
            rewardTimes?.Add(RewardPassTimes.Phase.Forward, ref clock);
            for (int i = 0; i < prefixes.Length; i++)
            {
                var row = rows[i]!;
                rows[i] = null; // kept's from here on (or disposed by it)
                resident.Keep(prefixes[i], candidates[(i * k)..((i + 1) * k)], row);
            }
            rewardTimes?.Add(RewardPassTimes.Phase.Keep, ref clock);
            return rewards;
        }
        finally
        {
            foreach (var row in rows) row?.Dispose(); // a pass that failed: its rows start afresh next time
        }
    }

    readonly System.Collections.Concurrent.ConcurrentDictionary<string, ResidentRewardRows> residentRows = new(StringComparer.Ordinal);

    /// <summary>Rows of <paramref name="prefixes"/> join the empty reward session: each from what the prefix cache found of it (<paramref name="found"/>), the rest prefilled.</summary>
    static void AddFromPrefixCache(BatchSession session, int[][] prefixes, PrefixCache.Match[] found, int capacity)
    {
        KvCache? kept = found.Any(f => f.Cache is not null) ? KvCache.StackRows(found.Select(f => (f.Cache, f.Row, f.FirstSlot, f.Length)).ToArray(), capacity) : null;
        session.AddRows(prefixes.Select((p, i) => p[found[i].Length..]).ToList(), capacity, kept);
    }

    /// <summary>
    /// The score head (Linear hidden → 1, no bias) of every row of <paramref name="hidden"/> [..., hidden], computed here:
    /// each reward a dot product of its hidden state with the head's weight, summed in double and rounded once. WHY not
    /// <see cref="RewardModel.ScoreFromHidden"/>: a pass's 80–160 candidate rows are past what <c>CpuLinear</c> takes, so
    /// it went to libtorch's linear (a matmul of a 3-d input, then the float tensor read back through an accessor),
    /// ~10 µs per row of k rewards at every pass for ~k·hidden multiply–adds. The same rewards up to the order of the
    /// sum (libtorch's gemv sums in float in its own order; this is the nearer to exact). Anything but a float32 head
    /// over float32 states goes to the model's own head.
    /// </summary>
    internal static float[] Scores(RewardModel rm, Tensor hidden)
    {
        var weight = rm.ScoreWeight;
        int dim = (int)weight.shape[^1];
        using var states = hidden.contiguous();
        if (weight.dtype != ScalarType.Float32 || states.dtype != ScalarType.Float32 || !weight.is_contiguous() || weight.shape[0] != 1 || hidden.shape[^1] != dim)
        {
            using var scores = rm.ScoreFromHidden(hidden).to(ScalarType.Float32).contiguous();
            return TensorMemory.FloatSpan(scores).ToArray();
        }
        ReadOnlySpan<float> w = TensorMemory.FloatSpan(weight), x = TensorMemory.FloatSpan(states);
        var rewards = new float[x.Length / dim];
        for (int r = 0; r < rewards.Length; r++)
        {
            var row = x.Slice(r * dim, dim);
            double sum = 0;
            for (int i = 0; i < dim; i++) sum += (double)row[i] * w[i];
            rewards[r] = (float)sum;
        }
        return rewards;
    }

    /// <summary>PARGS_SERVE_PROFILE=1: the reward passes' phase times (pargs_reward_phase_cpu_seconds_total).</summary>
    readonly RewardPassTimes? rewardTimes = Environment.GetEnvironmentVariable("PARGS_SERVE_PROFILE") == "1" ? new RewardPassTimes() : null;

    readonly Dictionary<RewardModel, BatchSession> rewardSessions = new(ReferenceEqualityComparer.Instance);
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, KeptRewardSiblings> keptSiblings = new(StringComparer.Ordinal);

    readonly System.Collections.Concurrent.ConcurrentDictionary<string, PrefixCache> rewardPrefixCaches = new(StringComparer.Ordinal);

    /// <summary>
    /// The language model's prefix cache, shared by all its decoders (on the worker): a request whose prompt extends a
    /// sequence a finished row held — a remote engine's next step, a chat's next turn — computes only the new tokens.
    /// </summary>
    PrefixCache? PrefixCacheOf(ServedLanguageModel model)
    {
        if (limits.PrefixCacheBytes <= 0) return null;
        if (!prefixCaches.TryGetValue(model.Name, out var cache)) prefixCaches[model.Name] = cache = new PrefixCache(limits.PrefixCacheBytes);
        return cache;
    }

    readonly System.Collections.Concurrent.ConcurrentDictionary<string, PrefixCache> prefixCaches = new(StringComparer.Ordinal);

    long steps, rowSteps, rewardPasses, rewardPassRequests;

    public IReadOnlyList<BackendMetric> Metrics => new[]
    {
        new BackendMetric("pargs_decoder_steps_total", "Batched decoding steps run (one per decoder per worker round).", true, Interlocked.Read(ref steps)),
        new BackendMetric("pargs_decoder_row_steps_total", "Rows those steps advanced (÷ steps = rows per batched step).", true, Interlocked.Read(ref rowSteps)),
        new BackendMetric("pargs_reward_passes_total", $"Batched /v1/rewards passes over kept prefixes (a pass scores waiting requests' texts for one reward model, at most {MaxRewardRowsPerPass} texts).", true, Interlocked.Read(ref rewardPasses)),
        new BackendMetric("pargs_reward_pass_requests_total", "/v1/rewards requests those passes scored (÷ passes = requests per pass).", true, Interlocked.Read(ref rewardPassRequests)),
    }.Concat(ProfileMetrics()).Concat(prefixCaches.Concat(rewardPrefixCaches).SelectMany(p =>
    {
        string labels = $"model=\"{p.Key}\"";
        return new[]
        {
            new BackendMetric("pargs_prefix_cache_hits_total", "Joining rows that started from a kept prefix.", true, p.Value.Hits, labels),
            new BackendMetric("pargs_prefix_cache_misses_total", "Joining rows prefilled whole.", true, p.Value.Misses, labels),
            new BackendMetric("pargs_prefix_cache_reused_tokens_total", "Prompt tokens read from the prefix cache instead of computed.", true, p.Value.ReusedTokens, labels),
            new BackendMetric("pargs_prefix_cache_computed_tokens_total", "Prompt tokens computed.", true, p.Value.ComputedTokens, labels),
            new BackendMetric("pargs_prefix_cache_evictions_total", "Prefix cache entries evicted to stay within the budget.", true, p.Value.Evictions, labels),
            new BackendMetric("pargs_prefix_cache_shared_rows_total", "Rows kept in the session cache they left with instead of copied out.", true, p.Value.SharedRowsKept, labels),
            new BackendMetric("pargs_prefix_cache_bytes", "Bytes of KV caches kept for prefixes.", false, p.Value.Bytes, labels),
        };
    })).Concat(residentRows.SelectMany(p => new[]
    {
        new BackendMetric("pargs_reward_resident_rows_committed_total",
            "/v1/rewards rows that continued a row kept from their previous request, its chosen candidate committed in place (no prefix copied or computed).",
            true, p.Value.CommittedInPlace, $"model=\"{p.Key}\""),
        new BackendMetric("pargs_reward_resident_reused_tokens_total", "Reward-model prefix tokens read from rows kept between /v1/rewards requests instead of computed.",
            true, p.Value.ReusedTokens, $"model=\"{p.Key}\""),
        new BackendMetric("pargs_reward_resident_evictions_total", "Kept /v1/rewards rows dropped to stay within the budget.", true, p.Value.Evictions, $"model=\"{p.Key}\""),
        new BackendMetric("pargs_reward_resident_bytes", "Bytes of the rows kept between /v1/rewards requests.", false, p.Value.Bytes, $"model=\"{p.Key}\""),
    })).Concat(keptSiblings.Select(p => new BackendMetric("pargs_reward_kept_sibling_tokens_total",
        "Reward-model prefix tokens copied from the candidates the previous /v1/rewards request scored instead of computed (counted as computed by its prefix cache).",
        true, p.Value.AppendedTokens, $"model=\"{p.Key}\""))).ToArray();

    /// <summary>With PARGS_SERVE_PROFILE=1: the worker's phase sums (read while it runs: doubles, a profile's precision), its CPU time.</summary>
    IEnumerable<BackendMetric> ProfileMetrics()
    {
        if (times is null) yield break;
        yield return new BackendMetric("pargs_worker_cpu_seconds_total", "CPU time of the generation worker thread.", true, Volatile.Read(ref workerCpuSeconds));
        if (rewardWorker is not null)
            yield return new BackendMetric("pargs_reward_worker_cpu_seconds_total", "CPU time of the reward worker thread (/v1/rewards passes).", true, Volatile.Read(ref rewardWorkerCpuSeconds));
        foreach (var phase in RewardPassTimes.Phases)
            yield return new BackendMetric("pargs_reward_phase_cpu_seconds_total", "CPU time of the /v1/rewards passes' phases (on the thread that runs them).", true,
                                           rewardTimes!.CpuSeconds(phase), $"phase=\"{phase}\"");
        yield return new BackendMetric("pargs_worker_timed_steps_total", "Decoder steps timed by phase.", true, times.Steps);
        yield return new BackendMetric("pargs_worker_timed_row_steps_total", "Rows those timed steps advanced.", true, times.RowSteps);
        foreach (var phase in StepPhaseTimes.Phases)
        {
            yield return new BackendMetric("pargs_worker_phase_cpu_seconds_total", "Worker thread CPU time of the decoding phases.", true, times.CpuSeconds(phase), $"phase=\"{phase}\"");
            yield return new BackendMetric("pargs_worker_phase_seconds_total", "Wall time of the worker's decoding phases.", true, times.WallSeconds(phase), $"phase=\"{phase}\"");
        }
    }

    static Pargs.Tokenizers.TokenizerEncoding CheckedLength(EncoderRewardModel encoder, Pargs.Tokenizers.TokenizerEncoding encoding, int i)
    {
        int most = encoder.Classifier.Config.MaxTokens;
        if (encoding.Ids.Length > most)
            throw new ApiException(400, $"input {i}: {encoding.Ids.Length} tokens exceed the reward model's context of {most}.", "input", "context_length_exceeded");
        return encoding;
    }

    static string Shorten(string text) => text.Length > 64 ? text[..64] + "…" : text;

    public void Dispose()
    {
        jobs.Writer.TryComplete();
        rewardJobs.Writer.TryComplete();
        // Each worker's state is released by this thread once that worker has ended (the reward passes' state is the
        // generation worker's too when there is no reward worker).
        // One deadline for both: they wind down at once, so a stuck pair costs 30 s, not 30 s each.
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        var wait = TimeSpan.FromSeconds(30);
        bool generationEnded = worker.Join(wait);
        bool rewardsEnded = rewardWorker is null ? generationEnded : rewardWorker.Join(TimeSpan.FromTicks(Math.Max(0, (wait - deadline.Elapsed).Ticks)));
        if (generationEnded)
        {
            foreach (var batch in decoders.Values) batch.Decoder.Dispose();
            decoders.Clear();
            foreach (var cache in prefixCaches.Values) cache.Dispose();
        }
        if (rewardsEnded)
        {
            foreach (var session in rewardSessions.Values) session.Dispose();
            foreach (var kept in keptSiblings.Values) kept.Dispose();
            foreach (var kept in residentRows.Values) kept.Dispose();
            foreach (var cache in rewardPrefixCaches.Values) cache.Dispose();
        }
    }
}
