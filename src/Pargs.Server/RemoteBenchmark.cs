using System.Diagnostics;
using System.Globalization;
using Pargs.Benchmarks;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Engine;
using Pargs.Engine.Remote;
using Pargs.Models;
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
    /// Client decoders the rows in flight are split over, one level each: 1 (one batch, one decoding thread) and 2 (two
    /// batches of half the rows, each on its own thread, as two `generate --shard i/2` processes would run them).
    /// </summary>
    public IReadOnlyList<int> ClientDecoders { get; init; } = [1, 2];
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

    public static BenchTable Run(Uri serverUrl, Models models, RemoteBenchmarkOptions options, Action<string>? log = null)
    {
        var (lm, rm) = (models.Lm, models.Rm);
        int warmUpRounds;
        var table = new BenchTable($"remote engine: pargs (k = {options.K}, w = {options.W.ToString(CultureInfo.InvariantCulture)}) on {models.Label}, {options.MaxTokens} tokens per row, pargs serve on loopback",
            "rows in flight", "engine", "tokens", "tok/s", "× local", "CPU ms / token", "LM requests / row / step", "RM requests / row / step", "server rows / batched step", "prefix cache: tokens reused / computed");
        using var metricsClient = new HttpClient { BaseAddress = serverUrl };
        ServerCounters Counters() => ServerCounters.Read(metricsClient.GetStringAsync("metrics").GetAwaiter().GetResult());
        RemoteEngine Connect(int concurrency) => RemoteEngine.Connect(new RemoteLmOptions { Url = serverUrl, Model = models.LmName, TopK = options.K, Concurrency = concurrency }, lm.Tokenizer!, lm.Config.EosTokenId);
        RemoteRewardModel RemoteRm(RemoteEngine engine, int concurrency) => new(new RemoteRmOptions { Url = serverUrl, Model = models.RmName, Concurrency = concurrency }, engine.Info);
        // Warm-up (not timed): the JIT, the server's first requests, TorchSharp's first ops; every engine at the widest level.
        {
            log?.Invoke($"{models.LmName}: warm-up…");
            int widest = options.Rows.Max();
            var warm = new DecodingOptions { Method = new PargsOptions { K = options.K, W = options.W }, Seed = 2, MaxNewTokens = 8, StopAtEos = false, BatchSize = widest };
            var warmPrompts = Enumerable.Range(1000, widest).Select(models.Prompt).ToArray();
            // The runtime counts a method's calls only once no new method has been compiled for 100 ms, then recompiles it
            // (instrumented, then optimized) after 30 counted calls, in the background. Two rounds back to back left the
            // timed levels running quick-jitted request paths on both sides while the compiler thread recompiled them (16 %
            // of the process's CPU in the last timed level's profile). So: rounds with a pause between them (counting
            // starts), each followed by the compiler's catch-up, until a round and its pause compile fewer than 1 in 40 of the
            // methods compiled so far (a stories260K run: +2,700, +3,700, +2,960, then +200 of 12,000) — the code a
            // long-running client and server run — at most six rounds.
            warmUpRounds = 0;
            for (long before = -1; warmUpRounds < 6; warmUpRounds++)
            {
                long start = System.Runtime.JitInfo.GetCompiledMethodCount();
                log?.Invoke($"{models.LmName}: warm-up round {warmUpRounds + 1}, {start} methods compiled so far");
                if (before >= 0 && start - before < start / 40) break; // the long tail: methods reaching their 30th call late
                // Every level's paths, the split ones too (their first profile compiled ~18 % of the samples in the split LM + RM level).
                foreach (int decoders in options.ClientDecoders.Where(d => d <= widest).Distinct())
                {
                    InDecoders(Engines.For(lm, warm.Engine), rm, warmPrompts, warm, decoders);
                    using var warmEngine = Connect(widest);
                    InDecoders(warmEngine, rm, warmPrompts, warm, decoders);
                    using var warmRm = RemoteRm(warmEngine, widest);
                    InDecoders(warmEngine, warmRm, warmPrompts, warm, decoders);
                }
                // Catch-up: until no method has been compiled for a quarter second (at most five seconds).
                var settle = Stopwatch.StartNew();
                for (long compiled = -1; settle.Elapsed.TotalSeconds < 5;)
                {
                    long now = System.Runtime.JitInfo.GetCompiledMethodCount();
                    if (now == compiled) break;
                    compiled = now;
                    Thread.Sleep(250);
                }
                before = start;
            }
        }
        var process = Process.GetCurrentProcess();
        // Client and server share this process: its CPU time per token is what a step costs both, whatever the machine's load.
        (IReadOnlyList<GenerationResult> Results, double Rate, string CpuPerToken, double Seconds, double CpuMs) Timed(Func<IReadOnlyList<GenerationResult>> run)
        {
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            long workItems = ThreadPool.CompletedWorkItemCount, jitted = System.Runtime.JitInfo.GetCompiledMethodCount();
            var jitTime = System.Runtime.JitInfo.GetCompilationTime();
            var clock = Stopwatch.StartNew();
            var results = run();
            double seconds = clock.Elapsed.TotalSeconds;
            process.Refresh();
            int tokens = results.Sum(r => r.TokenIds.Length);
            // Counts the machine's load does not change: thread-pool work items (each a hand-off between threads) per token, and
            // the compiler's work inside the level (a level that still compiles pays for warm-up in its CPU per token).
            double cpuMs = (process.TotalProcessorTime - cpu).TotalMilliseconds, compilerMs = (System.Runtime.JitInfo.GetCompilationTime() - jitTime).TotalMilliseconds;
            // The compiler's work inside a level is mostly the bench's own one-off code tiering up (console, /metrics parsing,
            // number formatting: a JitDisasmSummary of a timed level), not the steady state; a longer warm-up (32 tokens a round)
            // did not remove it. Its time is the runtime's wall clock around compilations (inflated on a loaded machine), so it
            // is logged, not subtracted from the table's CPU per token.
            log?.Invoke($"  thread-pool work items per token: {(ThreadPool.CompletedWorkItemCount - workItems) / (double)tokens:F2}; " +
                        $"methods compiled in the level: {System.Runtime.JitInfo.GetCompiledMethodCount() - jitted}, compiler wall ms per token: {compilerMs / tokens:F3}");
            return (results, tokens / seconds, (cpuMs / tokens).ToString("F2", CultureInfo.InvariantCulture), seconds, cpuMs);
        }
        var sameAsLocal = new List<string>();
        var splitNotes = new List<string>();
        foreach (int rows in options.Rows)
        {
            var prompts = Enumerable.Range(0, rows).Select(models.Prompt).ToArray();
            var decoding = new DecodingOptions
            {
                Method = new PargsOptions { K = options.K, W = options.W }, Seed = 1, MaxNewTokens = options.MaxTokens, StopAtEos = false, BatchSize = rows,
            };
            log?.Invoke($"{models.LmName}, {rows} row(s): local engine…");
            // The local engine runs before and after the remote levels and its two runs are combined: the host's speed drifts
            // within a run (the 15M shape's local level gave 141–307 tok/s in five runs at one load, while its remote LM + RM
            // level gave 176–242), so a ratio over one local run measured at another moment swung with it.
            var (local, _, _, localSeconds, localCpuMs) = Timed(() => TextGenerator.Generate(lm, rm, prompts, decoding));
            int localTokens = local.Sum(r => r.TokenIds.Length);

            long steps = (long)rows * options.MaxTokens;
            var remoteRows = new List<string[]>();
            // Split levels decode prompts of their own: the server's prefix cache holds every sequence an earlier level sent, and
            // a level repeating them would join rows from longer kept entries, a path a steering client (whose every request
            // extends its last one by a token) never takes. Their tokens are checked against a one-batch local run of the same
            // prompts (untimed), and the local engine split the same way is timed for reference (its decoders then take both
            // cores, where the one-batch local level, the ratios' base, runs on one).
            var promptsOf = new Dictionary<int, (string[] Prompts, IReadOnlyList<GenerationResult> Expected)> { [1] = (prompts, local) };
            foreach (int decoders in options.ClientDecoders.Where(d => d > 1 && d <= rows).Distinct())
            {
                var own = Enumerable.Range(0, rows).Select(i => models.Prompt(2000 + 100 * decoders + i)).ToArray();
                var expected = TextGenerator.Generate(lm, rm, own, decoding);
                promptsOf[decoders] = (own, expected);
                log?.Invoke($"{models.LmName}, {rows} row(s): local engine, {decoders} decoders…");
                var (split, splitRate, splitCpu, _, _) = Timed(() => InDecoders(Engines.For(lm, decoding.Engine), rm, own, decoding, decoders));
                if (!split.Select(r => r.TokenIds).SequenceEqual(expected.Select(r => r.TokenIds), new SameIds()))
                    throw new PargsException($"bench remote: the local engine's tokens over {decoders} decoders differ from one batch's");
                remoteRows.Add([rows.ToString(), $"local, {decoders} decoders (reference)", split.Sum(r => r.TokenIds.Length).ToString(), Rate(splitRate),
                    splitRate.ToString("R", CultureInfo.InvariantCulture), splitCpu, "–", "–", "–", "–"]);
            }
            foreach (int decoders in options.ClientDecoders.Where(d => d <= rows).Distinct())
            {
                string apart = decoders == 1 ? "" : $", {decoders} client decoders";
                var (levelPrompts, expectedTokens) = promptsOf[decoders];
                using var engine = Connect(rows);
                log?.Invoke($"{models.LmName}, {rows} row(s): remote LM, local RM{apart}…");
                var before = Counters();
                var (remote, rate, remoteCpu, _, _) = Timed(() => InDecoders(engine, rm, levelPrompts, decoding, decoders));
                if (!remote.Select(r => r.TokenIds).SequenceEqual(expectedTokens.Select(r => r.TokenIds), new SameIds()))
                    throw new PargsException($"bench remote: the remote engine's tokens differ from the local engine's ({decoders} client decoder(s))");
                if (Counters().WorkerProfile(before, remote.Sum(r => r.TokenIds.Length)) is { } remoteProfile) log?.Invoke("  " + remoteProfile);
                remoteRows.Add([rows.ToString(), "remote LM" + apart, remote.Sum(r => r.TokenIds.Length).ToString(), Rate(rate), rate.ToString("R", CultureInfo.InvariantCulture), remoteCpu,
                    PerStep(engine.Requests, steps), "local", .. Counters().Since(before, models.LmName)]);

                using var engine2 = Connect(rows);
                using var remoteRm = RemoteRm(engine2, rows);
                log?.Invoke($"{models.LmName}, {rows} row(s): remote LM, remote RM{apart}…");
                before = Counters();
                var (both, bothRate, bothCpu, _, _) = Timed(() => InDecoders(engine2, remoteRm, levelPrompts, decoding, decoders));
                if (Counters().WorkerProfile(before, both.Sum(r => r.TokenIds.Length)) is { } bothProfile) log?.Invoke("  " + bothProfile);
                remoteRows.Add([rows.ToString(), "remote LM + RM" + apart, both.Sum(r => r.TokenIds.Length).ToString(), Rate(bothRate), bothRate.ToString("R", CultureInfo.InvariantCulture), bothCpu,
                    PerStep(engine2.Requests, steps), PerStep(remoteRm.Requests, steps), .. Counters().Since(before, models.LmName, models.RmName)]);
                sameAsLocal.Add($"{rows} row(s){apart}: {both.Zip(expectedTokens).Count(p => p.First.TokenIds.SequenceEqual(p.Second.TokenIds))}/{rows}{(remoteRm.SendsTokenIds ? "" : " (texts)")}");
            }

            log?.Invoke($"{models.LmName}, {rows} row(s): local engine again…");
            var (again, _, _, againSeconds, againCpuMs) = Timed(() => TextGenerator.Generate(lm, rm, prompts, decoding));
            if (!again.Select(r => r.TokenIds).SequenceEqual(local.Select(r => r.TokenIds), new SameIds()))
                throw new PargsException("bench remote: the local engine's second run differs from its first");
            log?.Invoke($"  local engine before / after the remote levels: {localTokens / localSeconds:F0} / {localTokens / againSeconds:F0} tok/s");
            double localRate = 2.0 * localTokens / (localSeconds + againSeconds);
            string localCpu = ((localCpuMs + againCpuMs) / (2.0 * localTokens)).ToString("F2", CultureInfo.InvariantCulture);
            table.Add(rows.ToString(), "local", localTokens.ToString(), Rate(localRate), "1.00", localCpu, "–", "–", "–", "–");
            // Like with like: a remote level over two client decoders uses both cores for its decoding, as the local engine
            // split the same way does, so its ratio to that split local run is reported beside the × local column's.
            var splitLocalRates = remoteRows.Where(r => r[1].StartsWith("local, ", StringComparison.Ordinal))
                .ToDictionary(r => r[1].Split(' ')[1], r => double.Parse(r[4], CultureInfo.InvariantCulture));
            var likeForLike = new List<string>();
            foreach (var row in remoteRows)
            {
                double levelRate = double.Parse(row[4], CultureInfo.InvariantCulture); // the level's tok/s, held until the local rate was known
                row[4] = (levelRate / localRate).ToString("F2", CultureInfo.InvariantCulture);
                if (row[1].StartsWith("remote", StringComparison.Ordinal) && row[1].Split(", ") is [var what, var apart] && splitLocalRates.TryGetValue(apart.Split(' ')[0], out double splitRate))
                    likeForLike.Add($"{what} ({apart}) {levelRate / splitRate:F2}×");
                table.Add(row);
            }
            if (likeForLike.Count > 0) splitNotes.Add($"{rows} row(s): {string.Join(", ", likeForLike)}");
        }
        if (splitNotes.Count > 0)
            table.Notes.Add($"Over the local engine split the same way (its reference row; like with like, both decoding on two threads): {string.Join("; ", splitNotes)}.");
        table.Notes.Add($"Remote LM + RM rows whose tokens equal the local engine's (counted, not required: see below): {string.Join(", ", sameAsLocal)}.");
        table.Notes.Add("Same seed, same tokens: the remote LM rows are checked token for token against the local engine's before they are reported.");
        table.Notes.Add("Local: the local engine runs before and after the remote levels (the same tokens twice) and its row combines both runs (tokens over their summed time and CPU), so that × local does not swing with the host's speed drifting between the local level and the remote ones.");
        table.Notes.Add("Client and server share this process and its cores. CPU ms / token: the process's CPU time (client + server, every thread) over the level's tokens — what the machine's load does not change much, where tok/s is wall time on a shared machine.");
        table.Notes.Add("Every step request carries the row's whole prefix; pargs serve's prefix cache finds the previous step's prefix and computes only the new token (tokens reused / computed, from its /metrics; for LM + RM both models' caches are summed).");
        table.Notes.Add("Client decoders: \"2 client decoders\" splits the rows in flight into two batches decoded at once on two threads (as two `pargs generate --shard i/2` processes would), so that one batch's requests are served while the other scores its candidates; the same rows, seeds and tokens (checked), the same requests per row and step.");
        table.Notes.Add("Server rows / batched step: rows the server's decoder advanced per step — concurrent step requests that reach it together share one batched step.");
        table.Notes.Add("With the RM remote too, /v1/rewards scores each row's k candidates over their shared prefix (kept in the RM's prefix cache between steps, extended by the chosen candidate's keys/values kept from the last request — the computed count leaves those out); the candidates travel as the LM's token ids when the served RM's tokenizer is the LM's (both models here), else as texts. Rewards equal the local cached scorer's up to the order of float sums, not to its last bits, so equal tokens are counted above, not required.");
        table.Notes.Add($"Untimed warm-up first: every engine at the widest level, 8 tokens, in rounds until a round and its pause compiled few new methods ({warmUpRounds} round(s)): the timed levels run the optimized code a long-running client and server run, not quick-jitted code being recompiled.");
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
            return $"server worker CPU ms per token {(Get("pargs_worker_cpu_seconds_total") - before.Get("pargs_worker_cpu_seconds_total")) * 1000 / tokens:F3}, rows kept uncopied {shared:F0} " +
                   $"(phases: {string.Join(", ", phases)})";
        }

        /// <summary>[rows per batched step, "reused / computed" prompt tokens of <paramref name="models"/>' prefix caches] since <paramref name="before"/>.</summary>
        public string[] Since(ServerCounters before, params string[] models)
        {
            double Delta(string key) => Get(key) - before.Get(key);
            double steps = Delta("pargs_decoder_steps_total"), rowSteps = Delta("pargs_decoder_row_steps_total");
            double reused = models.Sum(m => Delta($"pargs_prefix_cache_reused_tokens_total{{model=\"{m}\"}}"));
            // A reward model's prefix token copied from the last request's scored candidates was not computed (its prefix cache counts it).
            double computed = models.Sum(m => Delta($"pargs_prefix_cache_computed_tokens_total{{model=\"{m}\"}}") - Delta($"pargs_reward_kept_sibling_tokens_total{{model=\"{m}\"}}"));
            return [steps == 0 ? "–" : (rowSteps / steps).ToString("F2", CultureInfo.InvariantCulture), $"{reused:F0} / {computed:F0}"];
        }
    }

    /// <summary>
    /// The prompts as <paramref name="decoders"/> batches decoded at once, each on its own thread over the same engine and
    /// reward model — the rows in flight are the same, but one batch's step requests are on the wire (and the server's
    /// worker runs them) while another batch scores its candidates here: a lone decoder waits for the server and the server
    /// for it, so client and server take turns on the cores (the remote levels' profile: about one of the 2 cores busy). Each
    /// batch passes its first prompt's index, so every row draws the stream it draws in one batch: the same tokens.
    /// </summary>
    public static IReadOnlyList<GenerationResult> InDecoders(LanguageModelEngine engine, IRewardModel rm, string[] prompts, DecodingOptions decoding, int decoders)
    {
        if (decoders <= 1 || prompts.Length < decoders) return TextGenerator.Generate(engine, rm, prompts, decoding);
        int size = (prompts.Length + decoders - 1) / decoders;
        var parts = new IReadOnlyList<GenerationResult>[decoders];
        var failures = new Exception?[decoders];
        var threads = Enumerable.Range(0, decoders).Select(batch => new Thread(() =>
        {
            int start = Math.Min(prompts.Length, batch * size), end = Math.Min(prompts.Length, start + size);
            if (start == end) { parts[batch] = []; return; } // fewer prompts than the batches can hold: this one has none
            try { parts[batch] = TextGenerator.Generate(engine, rm, prompts[start..end], decoding with { BatchSize = size }, firstPromptIndex: start); }
            catch (Exception e) { failures[batch] = e; }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        if (failures.FirstOrDefault(f => f is not null) is { } failure) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return parts.SelectMany(p => p).ToArray();
    }

    static string Rate(double r) => r.ToString("F0", CultureInfo.InvariantCulture);

    static string PerStep(long requests, long rowSteps) => ((double)requests / rowSteps).ToString("F2", CultureInfo.InvariantCulture);

    sealed class SameIds : IEqualityComparer<int[]>
    {
        public bool Equals(int[]? a, int[]? b) => a!.SequenceEqual(b!);
        public int GetHashCode(int[] a) => a.Length;
    }
}
