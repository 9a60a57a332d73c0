using System.Diagnostics;
using System.Globalization;
using Pargs.Benchmarks;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Engine.Remote;
using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Rewards;
using Pargs.Rewards.Remote;

namespace Pargs.Server;

/// <summary>Settings of `pargs bench remote`.</summary>
public sealed record RemoteBenchmarkOptions
{
    public IReadOnlyList<int> Rows { get; init; } = [1, 4, 16];
    public int MaxTokens { get; init; } = 32;
    public int K { get; init; } = 10;
    public double W { get; init; } = 2.0;
    /// <summary>
    /// Client decoders the rows in flight are split over, one level each: 1 (one batch, one decoding thread), 2 and 4 (batches
    /// of half or a quarter of the rows, each on its own thread, as `generate --decoders n` runs them); n: n batches of
    /// ⌈rows / n⌉ rows. 4 by default too: at 16 rows on stories260K it gave the remote LM + RM its best rate
    /// (docs/benchmarks.md). A count that would leave a batch empty at some rows level is refused
    /// (<see cref="RemoteBenchmark.CheckDecoders"/>); at a level with fewer rows than decoders it is skipped.
    /// </summary>
    public IReadOnlyList<int> ClientDecoders { get; init; } = [1, 2, 4];

    /// <summary>The longest the untimed warm-up may run before the levels (<see cref="JitSettle"/>).</summary>
    public double JitWarmUpSeconds { get; init; } = 60;
}

/// <summary>
/// `pargs bench remote`: PARGS through a RemoteEngine steering `pargs serve` on loopback, next to the local engine in the
/// same run, at 1, 4 and 16 rows in flight (one batch of that many prompts). Counted: LM requests per row and step
/// (exactly one when the engine does what it claims) and, with the reward model behind /v1/rewards too, RM requests.
/// </summary>
public static class RemoteBenchmark
{
    /// <summary>What one table measures: the model pair the server serves (by name) and local copies of the same weights.</summary>
    public sealed record Models(string Label, string LmName, string RmName, CausalLM Lm, IRewardModel Rm, Func<int, string> Prompt);

    /// <summary>stories260K and its partial RM (served as "stories260K" and "stories260K-partial-rm").</summary>
    public static Models Stories260K(CausalLM lm, IRewardModel rm)
        => new("stories260K", "stories260K", "stories260K-partial-rm", lm, rm, i => $"Once upon a time, story {i}");

    /// <summary>
    /// The 15M shape: local copies of <see cref="ServeBenchmark.Random15M"/>'s random pair (the same seeds give the same
    /// weights), prompts of 16 random ids in <see cref="Benchmarks.IdTokenizer"/>'s text.
    /// </summary>
    public static Models Random15M()
    {
        var config = BenchmarkModels.Llama15MShape();
        var lm = BenchmarkModels.RandomLM(config, seed: 15);
        var rm = RewardModel.Create(config, seed: 16);
        rm.Tokenizer = new IdTokenizer(config.VocabSize);
        rm.eval();
        return new Models("the 15M shape (random weights)", ServeBenchmark.Model15M, ServeBenchmark.Model15M + "-rm", lm, rm,
            i => string.Concat(BenchmarkModels.RandomPrompt(16, config.VocabSize, seed: 100 + i).Select(id => $"<{id}>")));
    }

    public static BenchTable Run(Uri serverUrl, CausalLM lm, IRewardModel rm, RemoteBenchmarkOptions options, Action<string>? log = null)
        => Run(serverUrl, Stories260K(lm, rm), options, log);

    /// <summary>
    /// Refuses a client-decoder count that would leave a batch without rows at some rows level: <see cref="InDecoders"/> cuts
    /// the rows into batches of ⌈rows / decoders⌉, so 3 decoders over 4 rows would run 2 batches labelled 3. A count above a
    /// level's rows is skipped at that level (said in the table's notes).
    /// </summary>
    public static void CheckDecoders(IReadOnlyList<int> rows, IReadOnlyList<int> decoders)
    {
        foreach (int d in decoders.Distinct())
            foreach (int r in rows.Distinct())
                if (d > 1 && d <= r && BatchesOf(r, d) < d)
                    throw new PargsException($"--client-decoders: {d} decoders over {r} rows would leave a batch empty (batches of {(r + d - 1) / d} rows make only {BatchesOf(r, d)})");
    }

    /// <summary>The batches <see cref="InDecoders"/> runs <paramref name="rows"/> in over <paramref name="decoders"/> decoders.</summary>
    static int BatchesOf(int rows, int decoders)
    {
        int size = (rows + decoders - 1) / decoders;
        return (rows + size - 1) / size;
    }

    /// <summary>Tokens, wall seconds and process CPU of one timed run; two runs of the same work add up.</summary>
    readonly record struct Measure(int Tokens, double Seconds, double CpuMs)
    {
        public double Rate => Tokens / Seconds;
        public string CpuPerToken => (CpuMs / Tokens).ToString("F2", CultureInfo.InvariantCulture);
        public static Measure operator +(Measure a, Measure b) => new(a.Tokens + b.Tokens, a.Seconds + b.Seconds, a.CpuMs + b.CpuMs);
    }

    enum LevelKind { LocalSplit, RemoteLm, RemoteLmRm }

    /// <summary>One row of the table before the ratios are known: the level, what it measured and its base's rate.</summary>
    sealed record Level(LevelKind Kind, int Decoders, int Tokens, double Rate, string CpuPerToken, string LmPerStep, string RmPerStep, string[] Server)
    {
        public string Label => Kind switch
        {
            LevelKind.LocalSplit => $"local, {Decoders} decoders (reference)",
            LevelKind.RemoteLm => "remote LM" + Apart,
            _ => "remote LM + RM" + Apart,
        };

        public string Apart => Decoders == 1 ? "" : $", {Decoders} client decoders";
    }

    /// <summary>A split level's own prompts, their one-batch local tokens, and that one-batch run and the split local run timed before and after the remote levels.</summary>
    sealed class SplitReference(string[] prompts, IReadOnlyList<GenerationResult> expected)
    {
        public string[] Prompts { get; } = prompts;
        public IReadOnlyList<GenerationResult> Expected { get; } = expected;
        public Measure OneBatch { get; set; }
        public Measure Split { get; set; }
    }

    /// <summary>
    /// The HTTP floor: process CPU per loopback round trip of a request the server answers without work (GET /health), with
    /// <paramref name="inFlight"/> in flight through the remote engine's own client (<see cref="RemoteHttp"/>: its pooled
    /// keep-alive connections, its bound on requests in flight, its read and parse of the answer). WHY:
    /// one remote token costs an LM and an RM request; on stories260K the local engine's whole token (10 reward candidates
    /// and the LM) costs about as much CPU as two such round trips, so where "× local" lands is mostly the HTTP stack's
    /// cost — this number, measured in the same run, says how much of that is the floor Kestrel and that client pay.
    /// </summary>
    static double HttpFloorMicroseconds(Uri serverUrl, int inFlight, Func<TimeSpan> cpu)
    {
        using var http = new RemoteHttp(inFlight, TimeSpan.FromSeconds(30), retries: 0, retryBase: TimeSpan.Zero, apiKey: null);
        var health = new Uri(serverUrl, "health");
        void Row(int count) // as a decoder asks: on its own thread, each round trip read where it was sent
        {
            for (int i = 0; i < count; i++)
                http.Begin(HttpMethod.Get, health, null).Wait().Dispose();
        }
        void Rows(int count)
        {
            Exception? failed = null;
            var threads = Enumerable.Range(0, inFlight).Select(_ => new Thread(() =>
            {
                try { Row(count); }
                catch (Exception e) { Interlocked.CompareExchange(ref failed, e, null); }
            })).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            if (failed is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed);
        }
        Rows(300); // warm: connections, JIT
        CompilerCatchUp();
        int perRow = Math.Max(200, 16_000 / inFlight);
        var before = cpu();
        Rows(perRow);
        return (cpu() - before).TotalMicroseconds / ((double)perRow * inFlight);
    }

    /// <summary>Waits until no method has been compiled for a quarter second (at most five seconds).</summary>
    static void CompilerCatchUp()
    {
        var settle = Stopwatch.StartNew();
        for (long compiled = -1; settle.Elapsed.TotalSeconds < 5;)
        {
            long now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now == compiled) break;
            compiled = now;
            Thread.Sleep(250);
        }
    }

    /// <summary>Every level of the benchmark against the server at <paramref name="serverUrl"/>, the local engine beside it.</summary>
    /// <param name="serverUrl">pargs serve's base URL, serving <paramref name="models"/>' pair.</param>
    /// <param name="models">The local pair (the baseline) and the names the server serves it under.</param>
    /// <param name="options">Rows, client decoders, tokens per row, method settings.</param>
    /// <param name="log">Progress lines.</param>
    /// <param name="serverProcessCpu">
    /// When the server runs in a process of its own (<c>bench remote --server process</c>: pargs serve as users run it), that
    /// process's CPU time so far; its CPU is then added to this process's (the client's) in every level and in the HTTP floor.
    /// Null: the server runs in this process.
    /// </param>
    public static BenchTable Run(Uri serverUrl, Models models, RemoteBenchmarkOptions options, Action<string>? log = null, Func<TimeSpan>? serverProcessCpu = null)
    {
        CheckDecoders(options.Rows, options.ClientDecoders);
        var (lm, rm) = (models.Lm, models.Rm);
        JitSettle.Result warmUp;
        var table = new BenchTable($"remote engine: pargs (k = {options.K}, w = {options.W.ToString(CultureInfo.InvariantCulture)}) on {models.Label}, {options.MaxTokens} tokens per row, pargs serve on loopback{(serverProcessCpu is null ? "" : " in its own process")}",
            "rows in flight", "engine", "tokens", "tok/s", "× local", "CPU ms / token", "LM requests / row / step", "RM requests / row / step", "server rows / batched step", "prefix cache: tokens reused / computed");
        using var metricsClient = new HttpClient { BaseAddress = serverUrl };
        ServerCounters Counters() => ServerCounters.Read(metricsClient.GetStringAsync("metrics").GetAwaiter().GetResult());
        RemoteEngine Connect(int concurrency) => RemoteEngine.Connect(new RemoteLmOptions { Url = serverUrl, Model = models.LmName, TopK = options.K, Concurrency = concurrency }, lm.Tokenizer!, lm.Config.EosTokenId);
        RemoteRewardModel RemoteRm(RemoteEngine engine, int concurrency) => new(new RemoteRmOptions { Url = serverUrl, Model = models.RmName, Concurrency = concurrency }, engine.Info);
        // The local split decoders share the one local pair, as the remote levels' client shares its RM: every decoding
        // session (BatchSession) makes its own decode kernel, activation buffers and lock, so their forwards run at once; what
        // they share is read-only weights, rotary tables grown under a lock, and CpuThreads' workers (one dispatcher at a time,
        // the other runs inline: the same for the remote levels' client and server).
        // Warm-up (not timed): the JIT, the server's first requests, TorchSharp's first ops; every engine at the widest level.
        {
            log?.Invoke($"{models.LmName}: warm-up…");
            int widest = options.Rows.Max();
            var warm = new DecodingOptions { Method = new PargsOptions { K = options.K, W = options.W }, Seed = 2, MaxNewTokens = 8, StopAtEos = false, BatchSize = widest };
            var warmPrompts = Enumerable.Range(1000, widest).Select(models.Prompt).ToArray();
            // Rounds of every engine at the widest level until the tiered JIT has settled (JitSettle: the rounds of the last
            // 5 s compiled at most 20 methods, at most JitWarmUpSeconds). The rounds-based stop this replaced (a round that
            // compiled under 1 in 40 of the methods so far, at most six) left the tiered JIT at 6 % of the LM + RM level's samples.
            warmUp = JitSettle.WarmUp(() =>
            {
                // Every level's paths, the split ones too (their first profile compiled ~18 % of the samples in the split LM + RM level).
                foreach (int decoders in options.ClientDecoders.Where(d => d <= widest).Distinct())
                {
                    InDecoders(Engines.For(lm, warm.Engine), rm, warmPrompts, warm, decoders);
                    using var warmEngine = Connect(widest);
                    InDecoders(warmEngine, rm, warmPrompts, warm, decoders);
                    using var warmRm = RemoteRm(warmEngine, widest);
                    InDecoders(warmEngine, warmRm, warmPrompts, warm, decoders);
                }
                return Task.CompletedTask;
            }, options.JitWarmUpSeconds, (round, methods) => log?.Invoke($"{models.LmName}: warm-up round {round}, {methods} methods compiled so far")).GetAwaiter().GetResult();
        }
        var process = Process.GetCurrentProcess();
        // Client and server together (one process, or the client's and the server's): CPU time per token is what a step
        // costs both, whatever the machine's load.
        TimeSpan Cpu()
        {
            process.Refresh();
            return process.TotalProcessorTime + (serverProcessCpu?.Invoke() ?? TimeSpan.Zero);
        }
        string where = serverProcessCpu is null ? "client and server in this process" : "the client in this process, pargs serve in its own";
        (IReadOnlyList<GenerationResult> Results, Measure Measure) Timed(Func<IReadOnlyList<GenerationResult>> run)
        {
            // A level starts once the compiler is idle: connecting a client (tokenizer probes, JSON set-up) compiles code that
            // would otherwise tier up in the background inside the level (a level's compiled methods were mostly that, and
            // Spectre's and /metrics' one-off code), which the steady state of a client and server does not pay.
            CompilerCatchUp();
            var threadsBefore = ProcessThreadsCpu.Take(); // outside the level's CPU: reading /proc is the bench's, not a step's
            var cpu = Cpu();
            var clock = Stopwatch.StartNew();
            var results = run();
            double seconds = clock.Elapsed.TotalSeconds;
            double cpuMs = (Cpu() - cpu).TotalMilliseconds;
            var threadsAfter = ProcessThreadsCpu.Take();
            int tokens = results.Sum(r => r.TokenIds.Length);
            // Where the level's CPU went by kind of thread (server workers, thread pool, sockets, JIT; the client's decoders are
            // "other"), and the counts the machine's load does not change: thread-pool work items (each a hand-off between
            // threads) and the methods compiled inside the level (a level that still compiles pays for warm-up in its CPU).
            if (threadsAfter.Since(threadsBefore, tokens) is { } split) log?.Invoke("  " + split);
            return (results, new Measure(tokens, seconds, cpuMs));
        }
        void CheckSame(IReadOnlyList<GenerationResult> got, IReadOnlyList<GenerationResult> want, string what)
        {
            if (!got.Select(r => r.TokenIds).SequenceEqual(want.Select(r => r.TokenIds), new SameIds())) throw new PargsException($"bench remote: {what}");
        }
        var sameAsLocal = new List<string>();
        string? floorNote = null;
        var splitNotes = new List<string>();
        var atTargetRows = new List<(bool BothRemote, int Decoders, double Ratio)>(); // × local of every remote level at TargetRows
        var skipped = new SortedSet<string>();
        foreach (int rows in options.Rows)
        {
            var prompts = Enumerable.Range(0, rows).Select(models.Prompt).ToArray();
            var decoding = new DecodingOptions
            {
                Method = new PargsOptions { K = options.K, W = options.W }, Seed = 1, MaxNewTokens = options.MaxTokens, StopAtEos = false, BatchSize = rows,
            };
            foreach (int d in options.ClientDecoders.Where(d => d > rows).Distinct()) skipped.Add($"{d} decoders at {rows} row(s)");
            var splitLevels = options.ClientDecoders.Where(d => d > 1 && d <= rows).Distinct().ToArray();
            log?.Invoke($"{models.LmName}, {rows} row(s): local engine…");
            // The local engine runs before and after the remote levels and its two runs are combined: the host's speed drifts
            // within a run (the 15M shape's local level gave 141–307 tok/s in five runs at one load, while its remote LM + RM
            // level gave 176–242), so a ratio over one local run measured at another moment swung with it.
            var (local, localMeasure) = Timed(() => TextGenerator.Generate(lm, rm, prompts, decoding));

            long steps = (long)rows * options.MaxTokens;
            // Split levels decode prompts of their own: the server's prefix cache holds every sequence an earlier level sent, and
            // a level repeating them would join rows from longer kept entries, a path a steering client (whose every request
            // extends its last one by a token) never takes. Their base is a one-batch local run of the same prompts (whose tokens
            // they must give), and the local engine split the same way is their like-for-like reference; both are timed before
            // and after the remote levels and combined, as the one-batch local level is.
            var references = new Dictionary<int, SplitReference>();
            void TimeSplitReferences(bool first)
            {
                foreach (int decoders in splitLevels)
                {
                    var reference = references.GetValueOrDefault(decoders);
                    var own = reference?.Prompts ?? Enumerable.Range(0, rows).Select(i => models.Prompt(2000 + 100 * decoders + i)).ToArray();
                    log?.Invoke($"{models.LmName}, {rows} row(s): local engine over the {decoders}-decoder level's prompts, one batch, then {decoders} decoders{(first ? "" : " (again)")}…");
                    var (oneBatch, oneBatchMeasure) = Timed(() => TextGenerator.Generate(lm, rm, own, decoding));
                    var (split, splitMeasure) = Timed(() => InDecoders(Engines.For(lm, decoding.Engine), rm, own, decoding, decoders));
                    reference ??= references[decoders] = new SplitReference(own, oneBatch);
                    CheckSame(oneBatch, reference.Expected, "the local engine's second run differs from its first");
                    CheckSame(split, reference.Expected, $"the local engine's tokens over {decoders} decoders differ from one batch's");
                    reference.OneBatch = first ? oneBatchMeasure : reference.OneBatch + oneBatchMeasure;
                    reference.Split = first ? splitMeasure : reference.Split + splitMeasure;
                }
            }
            TimeSplitReferences(first: true);

            var levels = new List<Level>();
            foreach (int decoders in options.ClientDecoders.Where(d => d <= rows).Distinct())
            {
                var (levelPrompts, expectedTokens) = decoders == 1 ? (prompts, local) : (references[decoders].Prompts, references[decoders].Expected);
                using var engine = Connect(rows);
                var lmLevel = new Level(LevelKind.RemoteLm, decoders, 0, 0, "", "", "", []);
                log?.Invoke($"{models.LmName}, {rows} row(s): {lmLevel.Label}…");
                var before = Counters();
                var (remote, remoteMeasure) = Timed(() => InDecoders(engine, rm, levelPrompts, decoding, decoders));
                CheckSame(remote, expectedTokens, $"the remote engine's tokens differ from the local engine's ({decoders} client decoder(s))");
                if (Counters().WorkerProfile(before, remoteMeasure.Tokens) is { } remoteProfile) log?.Invoke("  " + remoteProfile);
                levels.Add(lmLevel with { Tokens = remoteMeasure.Tokens, Rate = remoteMeasure.Rate, CpuPerToken = remoteMeasure.CpuPerToken,
                    LmPerStep = PerStep(engine.Requests, steps), RmPerStep = "local", Server = Counters().Since(before, models.LmName) });

                using var engine2 = Connect(rows);
                using var remoteRm = RemoteRm(engine2, rows);
                var bothLevel = new Level(LevelKind.RemoteLmRm, decoders, 0, 0, "", "", "", []);
                log?.Invoke($"{models.LmName}, {rows} row(s): {bothLevel.Label}…");
                before = Counters();
                var (both, bothMeasure) = Timed(() => InDecoders(engine2, remoteRm, levelPrompts, decoding, decoders));
                if (Counters().WorkerProfile(before, bothMeasure.Tokens) is { } bothProfile) log?.Invoke("  " + bothProfile);
                levels.Add(bothLevel with { Tokens = bothMeasure.Tokens, Rate = bothMeasure.Rate, CpuPerToken = bothMeasure.CpuPerToken,
                    LmPerStep = PerStep(engine2.Requests, steps), RmPerStep = PerStep(remoteRm.Requests, steps), Server = Counters().Since(before, models.LmName, models.RmName) });
                sameAsLocal.Add($"{rows} row(s){bothLevel.Apart}: {both.Zip(expectedTokens).Count(p => p.First.TokenIds.SequenceEqual(p.Second.TokenIds))}/{rows}{(remoteRm.SendsTokenIds ? "" : " (texts)")}");
            }

            log?.Invoke($"{models.LmName}, {rows} row(s): local engine again…");
            var (again, againMeasure) = Timed(() => TextGenerator.Generate(lm, rm, prompts, decoding));
            CheckSame(again, local, "the local engine's second run differs from its first");
            log?.Invoke($"  local engine before / after the remote levels: {localMeasure.Rate:F0} / {againMeasure.Rate:F0} tok/s");
            TimeSplitReferences(first: false);
            var localBoth = localMeasure + againMeasure;
            table.Add(rows.ToString(), "local", localMeasure.Tokens.ToString(), Rate(localBoth.Rate), "1.00", localBoth.CpuPerToken, "–", "–", "–", "–");
            foreach (int decoders in splitLevels)
            {
                var reference = references[decoders];
                table.Add(rows.ToString(), new Level(LevelKind.LocalSplit, decoders, 0, 0, "", "", "", []).Label, (reference.Split.Tokens / 2).ToString(),
                    Rate(reference.Split.Rate), Ratio(reference.Split.Rate / reference.OneBatch.Rate), reference.Split.CpuPerToken, "–", "–", "–", "–");
            }
            // × local: a one-batch level over the one-batch local level; a split level over the one-batch local run of its own
            // prompts. Like with like: a split remote level over the local engine split the same way, in a note.
            var likeForLike = new List<string>();
            foreach (var level in levels)
            {
                double baseRate = level.Decoders == 1 ? localBoth.Rate : references[level.Decoders].OneBatch.Rate;
                table.Add([rows.ToString(), level.Label, level.Tokens.ToString(), Rate(level.Rate), Ratio(level.Rate / baseRate), level.CpuPerToken, level.LmPerStep, level.RmPerStep, .. level.Server]);
                if (rows == TargetRows) atTargetRows.Add((level.Kind == LevelKind.RemoteLmRm, level.Decoders, level.Rate / baseRate));
                if (level.Decoders > 1)
                    likeForLike.Add($"{(level.Kind == LevelKind.RemoteLm ? "remote LM" : "remote LM + RM")} ({level.Decoders} client decoders) {Ratio(level.Rate / references[level.Decoders].Split.Rate)}×");
            }
            if (likeForLike.Count > 0) splitNotes.Add($"{rows} row(s): {string.Join(", ", likeForLike)}");
            if (rows == options.Rows.Max())
            {
                log?.Invoke($"{models.LmName}, {rows} row(s): the HTTP floor (GET /health)…");
                double floor = HttpFloorMicroseconds(serverUrl, rows, Cpu);
                double localMs = localBoth.CpuMs / localBoth.Tokens;
                floorNote = $"HTTP floor at {rows} in flight: {floor.ToString("F0", CultureInfo.InvariantCulture)} µs of CPU per loopback round trip "
                    + $"(GET /health, {where}, no work in the handler). A remote LM + RM token makes two requests: "
                    + $"were the server's compute the local engine's ({localMs.ToString("F2", CultureInfo.InvariantCulture)} ms of CPU per token here) and each request "
                    + $"only its floor, the CPU per token would be {(localMs + 2 * floor / 1000).ToString("F2", CultureInfo.InvariantCulture)} ms — × local "
                    + $"{Ratio(localMs / (localMs + 2 * floor / 1000))} with the cores as busy as the local run kept them; the LM + RM rows' CPU per token above, less this, is what the remote path costs beyond the floor.";
            }
        }
        if (TargetNote(atTargetRows) is { } target)
        {
            table.Notes.Insert(0, target);
            log?.Invoke(target);
        }
        if (floorNote is not null) table.Notes.Add(floorNote);
        string kernelThreads = $"{CpuThreads.Count} kernel thread{(CpuThreads.Count == 1 ? "" : "s")} (--threads)";
        if (splitNotes.Count > 0)
            table.Notes.Add($"Over the local engine split the same way (its reference row; like with like: n decoders on n threads, over the one local LM and RM (each decoding session with its own kernel), over {kernelThreads}): {string.Join("; ", splitNotes)}.");
        if (options.ClientDecoders.Any(d => d > 1))
            table.Notes.Add("× local of a split level (its remote rows and its local reference): over the one-batch local engine on that level's own prompts (one decoding thread over " + kernelThreads + "), timed before and after the remote levels and combined like the local row; the split levels' prompts differ from the one-batch levels' (see the notes on client decoders).");
        if (skipped.Count > 0) table.Notes.Add($"Skipped (more decoders than rows): {string.Join(", ", skipped)}.");
        table.Notes.Add($"Remote LM + RM rows whose tokens equal the local engine's (counted, not required: see below): {string.Join(", ", sameAsLocal)}.");
        table.Notes.Add("Same seed, same tokens: the remote LM rows are checked token for token against the local engine's before they are reported.");
        table.Notes.Add("Local: the local engine runs before and after the remote levels (the same tokens twice) and its row combines both runs (tokens over their summed time and CPU), so that × local does not swing with the host's speed drifting between the local level and the remote ones; the split levels' local runs are timed and combined the same way.");
        table.Notes.Add((serverProcessCpu is null
            ? "Client and server share this process and its cores. CPU ms / token: the process's CPU time (client + server, every thread)"
            : "pargs serve runs in its own process (--server process: started as `pargs serve --port 0`, its models loaded as that command loads them), the client and the local engine in this one, all on the same cores. CPU ms / token: both processes' CPU time (every thread)")
            + " over the level's tokens — what the machine's load does not change much, where tok/s is wall time on a shared machine.");
        table.Notes.Add("Every step request carries the row's whole prefix; pargs serve's prefix cache finds the previous step's prefix and computes only the new token (tokens reused / computed, from its /metrics; for LM + RM both models' caches are summed).");
        var splitDescriptions = options.Rows.SelectMany(r => options.ClientDecoders.Where(d => d > 1 && d <= r).Distinct()
            .Select(d => $"{d} client decoders at {r} row(s): {BatchesOf(r, d)} batches of up to {(r + d - 1) / d} rows on {BatchesOf(r, d)} threads")).ToArray();
        if (splitDescriptions.Length > 0)
            table.Notes.Add($"Client decoders split the rows in flight into batches decoded at once, each on its own thread (as `pargs generate --decoders n` runs them), so that one batch's requests are served while another scores its candidates ({string.Join("; ", splitDescriptions)}); the same rows, seeds and tokens (checked), the same requests per row and step.");
        table.Notes.Add("Server rows / batched step: rows the server's decoder advanced per step — concurrent step requests that reach it together share one batched step.");
        table.Notes.Add("With the RM remote too, /v1/rewards scores each row's k candidates over their shared prefix (each row's kept between steps in a cache of its own on the server, the chosen candidate's keys/values committed where the last request's sibling forward wrote them — counted as reused, not computed); the candidates travel as the LM's token ids when the served RM's tokenizer is the LM's (both models here), else as texts. Rewards equal the local cached scorer's up to the order of float sums, not to its last bits, so equal tokens are counted above, not required.");
        table.Notes.Add($"Untimed warm-up first: every engine at the widest level, 8 tokens a row, {warmUp.Describe("the three engines", options.JitWarmUpSeconds)} — until the rounds of the last {JitSettle.QuietSeconds:F0} s compiled at most {JitSettle.QuietMethods} methods: the timed levels run the optimized code a long-running client and server run, not quick-jitted code being recompiled.");
        return table;
    }

    /// <summary>The server's decoder and prefix-cache counters (from /metrics), to report what one level cost it.</summary>
    sealed record ServerCounters(Dictionary<string, double> Values)
    {
        public static ServerCounters Read(string metrics)
        {
            var values = new Dictionary<string, double>();
            foreach (var line in metrics.Split('\n'))
            {
                if (line.Length == 0 || line[0] == '#') continue;
                int space = line.LastIndexOf(' ');
                if (space > 0 && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) values[line[..space]] = v;
            }
            return new ServerCounters(values);
        }

        double Get(string key) => Values.GetValueOrDefault(key);

        /// <summary>
        /// With PARGS_SERVE_PROFILE=1: the server worker thread's CPU ms per token since <paramref name="before"/>, and per
        /// decoding phase (a thread's own CPU clock: what the machine's load changes least); else null.
        /// </summary>
        public string? WorkerProfile(ServerCounters before, long tokens)
        {
            if (!Values.ContainsKey("pargs_worker_cpu_seconds_total")) return null;
            const string phase = "pargs_worker_phase_cpu_seconds_total{phase=\"";
            var phases = Values.Keys.Where(k => k.StartsWith(phase, StringComparison.Ordinal))
                .Select(k => $"{k[phase.Length..^2]} {(Get(k) - before.Get(k)) * 1000 / tokens:F3}");
            double shared = Values.Where(v => v.Key.StartsWith("pargs_prefix_cache_shared_rows_total", StringComparison.Ordinal)).Sum(v => v.Value - before.Get(v.Key));
            double passes = Get("pargs_reward_passes_total") - before.Get("pargs_reward_passes_total");
            string rewardWorker = Values.ContainsKey("pargs_reward_worker_cpu_seconds_total")
                ? $", reward worker {(Get("pargs_reward_worker_cpu_seconds_total") - before.Get("pargs_reward_worker_cpu_seconds_total")) * 1000 / tokens:F3}" : "";
            const string rewardPhase = "pargs_reward_phase_cpu_seconds_total{phase=\"";
            var rewardPhases = Values.Keys.Where(k => k.StartsWith(rewardPhase, StringComparison.Ordinal))
                .Select(k => $"{k[rewardPhase.Length..^2]} {(Get(k) - before.Get(k)) * 1000 / tokens:F3}").ToList();
            if (passes > 0 && rewardPhases.Count > 0) rewardWorker += $" (reward phases: {string.Join(", ", rewardPhases)})";
            string perPass = passes > 0 ? $", /v1/rewards requests per pass {(Get("pargs_reward_pass_requests_total") - before.Get("pargs_reward_pass_requests_total")) / passes:F2}" : "";
            return $"server worker CPU ms per token {(Get("pargs_worker_cpu_seconds_total") - before.Get("pargs_worker_cpu_seconds_total")) * 1000 / tokens:F3}{rewardWorker}{perPass}, rows kept uncopied {shared:F0} " +
                   $"(phases: {string.Join(", ", phases)})";
        }

        /// <summary>[rows per batched step, "reused / computed" prompt tokens of <paramref name="models"/>' prefix caches] since <paramref name="before"/>.</summary>
        public string[] Since(ServerCounters before, params string[] models)
        {
            double Delta(string key) => Get(key) - before.Get(key);
            double steps = Delta("pargs_decoder_steps_total"), rowSteps = Delta("pargs_decoder_row_steps_total");
            // A reward model's prefix read from the row kept since its client's last request was not computed either.
            double reused = models.Sum(m => Delta($"pargs_prefix_cache_reused_tokens_total{{model=\"{m}\"}}") + Delta($"pargs_reward_resident_reused_tokens_total{{model=\"{m}\"}}"));
            // A reward model's prefix token copied from the last request's scored candidates was not computed (its prefix cache counts it).
            double computed = models.Sum(m => Delta($"pargs_prefix_cache_computed_tokens_total{{model=\"{m}\"}}") - Delta($"pargs_reward_kept_sibling_tokens_total{{model=\"{m}\"}}"));
            return [steps == 0 ? "–" : (rowSteps / steps).ToString("F2", CultureInfo.InvariantCulture), $"{reused:F0} / {computed:F0}"];
        }
    }

    /// <summary>
    /// The prompts as <paramref name="decoders"/> batches decoded at once, each on its own thread over the same engine and
    /// reward model (<see cref="DecodingOptions.Decoders"/>, as `pargs generate --decoders` runs them) — the rows in flight
    /// are the same, but one batch's step requests are on the wire (and the server's worker runs them) while another batch
    /// scores its candidates here: a lone decoder waits for the server and the server for it, so client and server take
    /// turns on the cores (the remote levels' profile: about one of the 2 cores busy). Each batch passes its first prompt's
    /// index, so every row draws the stream it draws in one batch: the same tokens. Refuses a split that would leave a batch
    /// without rows (see <see cref="CheckDecoders"/>).
    /// </summary>
    public static IReadOnlyList<GenerationResult> InDecoders(LanguageModelEngine engine, IRewardModel rm, string[] prompts, DecodingOptions decoding, int decoders)
    {
        if (decoders <= 1 || prompts.Length < decoders) return TextGenerator.Generate(engine, rm, prompts, decoding);
        if (BatchesOf(prompts.Length, decoders) < decoders)
            throw new PargsException($"--client-decoders: {decoders} decoders over {prompts.Length} rows would leave a batch empty");
        int size = (prompts.Length + decoders - 1) / decoders;
        return TextGenerator.Generate(engine, rm, prompts, decoding with { BatchSize = size, Decoders = decoders });
    }

    static string Ratio(double r) => r.ToString("F2", CultureInfo.InvariantCulture);

    /// <summary>Issue 18's target: at 16 rows in flight, remote ≥ 0.6× the local engine's aggregate throughput.</summary>
    internal const int TargetRows = 16;
    internal const double TargetRatio = 0.6;

    /// <summary>
    /// The run's verdict on the target, stated by the benchmark rather than read off its rows by hand: for each remote engine
    /// and client-decoder split measured at <see cref="TargetRows"/> rows (repeat a level with <c>--rows 16 16 16</c>), every
    /// level's × local, their mean, and whether the mean reaches <see cref="TargetRatio"/>. With both models remote the
    /// target is the issue's (one LM and one RM request per row and step); the remote LM alone is shown beside it.
    /// Null when no level ran at that many rows.
    /// </summary>
    internal static string? TargetNote(IReadOnlyList<(bool BothRemote, int Decoders, double Ratio)> levels)
    {
        if (levels.Count == 0) return null;
        var parts = levels.GroupBy(l => (l.BothRemote, l.Decoders)).OrderByDescending(g => g.Key.BothRemote).ThenBy(g => g.Key.Decoders).Select(g =>
        {
            var ratios = g.Select(l => l.Ratio).ToList();
            double mean = ratios.Average();
            string engine = (g.Key.BothRemote ? "remote LM + RM" : "remote LM (RM local)") + (g.Key.Decoders == 1 ? ", one batch" : $", {g.Key.Decoders} client decoders");
            string values = ratios.Count == 1 ? Ratio(ratios[0]) : $"{string.Join(", ", ratios.Select(Ratio))} (mean {mean.ToString("F3", CultureInfo.InvariantCulture)})";
            return $"{engine}: {values} — {(mean >= TargetRatio ? "met" : "not met")}";
        });
        return $"Target at {TargetRows} rows in flight, remote ≥ {Ratio(TargetRatio)}× local (issue 18; both models remote is the issue's case): {string.Join("; ", parts)}.";
    }

    static string Rate(double r) => r.ToString("F0", CultureInfo.InvariantCulture);

    static string PerStep(long requests, long rowSteps) => ((double)requests / rowSteps).ToString("F2", CultureInfo.InvariantCulture);

    sealed class SameIds : IEqualityComparer<int[]>
    {
        public bool Equals(int[]? a, int[]? b) => a!.SequenceEqual(b!);
        public int GetHashCode(int[] a) => a.Length;
    }
}
