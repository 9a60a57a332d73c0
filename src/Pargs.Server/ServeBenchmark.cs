using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Pargs.Benchmarks;
using Pargs.Decoding;

namespace Pargs.Server;

/// <summary>Settings of `pargs bench serve`.</summary>
public sealed record ServeBenchmarkOptions
{
    public IReadOnlyList<int> Concurrency { get; init; } = [1, 4, 16, 64];
    /// <summary>
    /// Requests each stream sends one after another. WHY 16: the headline rate is taken while every stream is in flight
    /// (until the first stream has finished its requests); request lengths spread over MaxTokens/2 … 3·MaxTokens/2, so with
    /// few requests per stream the streams' totals differ widely and the first finishes early — at 16 streams that window
    /// holds ~55 % of the level's tokens with 4 requests, ~60 % with 8, ~75 % with 16 (the lengths' sums; measured in the
    /// table's in-flight share column).
    /// </summary>
    public int RequestsPerStream { get; init; } = 16;
    public int MaxTokens { get; init; } = 64;
    public string Method { get; init; } = "pargs";
    public int K { get; init; } = 10;
    public double W { get; init; } = 2.0;
    /// <summary>
    /// The requests' prompts (text the served model's tokenizer reads), taken in turn: every request of a run, warm-up
    /// included, gets its own while the list lasts. Real clients do not all send one prompt, and identical prompts would
    /// cost one LM token each once the prefix cache holds the first.
    /// </summary>
    public IReadOnlyList<string> Prompts { get; init; } = ServeBenchmark.StoryPrompts(512);
    /// <summary>
    /// At most this long, before the first level, rounds of requests at the highest concurrency run untimed until the JIT
    /// has settled (the rounds of the last 5 s compiled at most <see cref="JitSettle.QuietMethods"/> methods); 0 skips it.
    /// WHY: .NET recompiles hot methods in the background (tier 0, then instrumented, then optimized) for ~10–15 s of load
    /// after they first run; a level measured in that time counted 70–130 µs of JIT per token at 16 streams and ran the
    /// decoding worker on slower code — a start-up cost a server pays once, not one per token. The cap: stories260K's JIT
    /// was still compiling a few methods a round after 30 s, the 15M shape's rounds take seconds each.
    /// </summary>
    public double JitWarmUpSeconds { get; init; } = 30;
}

/// <summary>
/// `pargs bench serve`: concurrent streaming clients against a running server on loopback. Per concurrency level: one
/// untimed round (a request per stream: JIT, thread pool growth, the decoder and kernels at that batch size), then the
/// timed requests — aggregate completion tokens/s while every stream is in flight (from the level's start until the first
/// stream has received the end of its last request) and over the whole level, p50/p99 of time to first text and of
/// the gaps between text chunks (a chunk is usually one token; text a stop string or an unfinished UTF-8 character
/// holds back arrives with the next), the server's rows per batched step, and the CPU the process and its clients used.
/// The one-stream baseline runs before and after the other levels and combines both runs.
/// The load generator parses events with a Utf8JsonReader over the raw bytes (no JsonDocument, no strings per line)
/// so that 64 client streams take as little as possible of the cores they share with the server; the OpenAI SDK's
/// streaming clients are exercised by the tests (OpenAiSdkTests), not here.
/// </summary>
public static class ServeBenchmark
{
    /// <summary>The name `bench serve --models 15m` serves its random stories15M-shaped pair under.</summary>
    public const string Model15M = "15m";

    /// <summary>
    /// <paramref name="count"/> distinct story openings for stories260K (TinyStories-like: a name, a place, a thing), so
    /// concurrent requests prefill different prompts as real clients' do; openings share their first words at most.
    /// </summary>
    public static IReadOnlyList<string> StoryPrompts(int count)
    {
        string[] names = ["Lily", "Tim", "Ben", "Mia", "Sue", "Tom", "Anna", "Max"];
        string[] openings = ["Once upon a time, {0} went to the {1} to find a {2}.", "One day, {0} saw a {2} in the {1}.", "{0} was sad because the {2} was lost in the {1}.",
                             "{0} and mom walked to the {1}. There was a big {2}.", "In the {1}, {0} found a little {2}.", "{0} liked to play with a {2} at the {1}.",
                             "The sun was hot. {0} took a {2} to the {1}.", "{0} had a red {2}. One day at the {1},"];
        string[] places = ["park", "garden", "house", "forest", "beach", "school", "shop", "farm"];
        string[] things = ["ball", "dog", "cat", "box", "tree", "car", "bird", "cake"];
        var prompts = new List<string>(count);
        for (int i = 0; prompts.Count < count; i++)
        {
            int a = i % 8, b = i / 8 % 8, c = i / 64 % 8, d = i / 512 % 8;
            prompts.Add(string.Format(CultureInfo.InvariantCulture, openings[b], names[a], places[(c + d) % 8], things[(a + c) % 8]));
        }
        return prompts;
    }

    /// <summary>
    /// The 15M shape: a random Llama of llama2.c's stories15M shape (<see cref="BenchmarkModels.Llama15MShape"/>) and a random
    /// reward model of the same shape as its guide, both reading ids through <see cref="IdTokenizer"/> ("&lt;17&gt;&lt;4&gt;…").
    /// Random weights cost what trained ones do. Returns the models and 512 distinct 16-token prompts in that tokenizer's text.
    /// </summary>
    public static (ServedModels Models, IReadOnlyList<string> Prompts) Random15M()
    {
        var config = BenchmarkModels.Llama15MShape();
        var lm = BenchmarkModels.RandomLM(config, seed: 15);
        var rm = Pargs.Rewards.RewardModel.Create(config, seed: 16);
        rm.Tokenizer = new IdTokenizer(config.VocabSize);
        rm.Source = "(random weights, stories15M shape)";
        rm.eval();
        var models = new ServedModels().AddRewardModel(Model15M + "-rm", rm).AddLanguageModel(Model15M, lm);
        var prompts = Enumerable.Range(1, 512)
            .Select(seed => string.Concat(BenchmarkModels.RandomPrompt(16, config.VocabSize, seed).Select(id => $"<{id}>"))).ToArray();
        return (models, prompts);
    }

    /// <summary>What the served models' kept CpuGemm panels hold (<see cref="Pargs.Models.Cpu.KeptPanels"/>: the server's own models are held for inference only).</summary>
    public static string KeptPanelsNote(ServedModels models)
    {
        var kept = models.LanguageModels.Select(m => (object)m.Model.Backbone)
            .Concat(models.RewardModels.Select(m => m.Model).OfType<Pargs.Rewards.RewardModel>().Select(m => (object)m.Backbone))
            .Select(Pargs.Models.Cpu.KeptPanels.Of).OfType<Pargs.Models.Cpu.KeptPanels>().ToList();
        return Pargs.Models.Cpu.KeptPanels.Enabled
            ? string.Create(CultureInfo.InvariantCulture, $"Kept CpuGemm panels (the served models' weight panels packed once, KeptPanels): {kept.Sum(k => k.Matrices)} matrices, {kept.Sum(k => k.Bytes) / 1048576.0:F1} MiB, of which LM heads {kept.Sum(k => k.HeadBytes) / 1048576.0:F1} MiB (PARGS_KEPT_HEAD_MIB={Pargs.Models.Cpu.KeptPanels.MaxHeadBytes >> 20}).")
            : "Kept CpuGemm panels off (PARGS_KEPT_PANELS=0): every product packs its weights' panels per call, and takes CpuGemm from 16 or 32 rows by width.";
    }

    public static async Task<BenchTable> RunAsync(Uri serverUrl, string model, ServeBenchmarkOptions options, Action<string>? log = null)
    {
        if (options.Concurrency.Count == 0 || options.Concurrency.Any(c => c < 1 || c > 256)) throw new PargsException("--concurrency: each level must be between 1 and 256");
        if (options.RequestsPerStream < 1) throw new PargsException($"--requests must be at least 1, got {options.RequestsPerStream}");
        if (options.Prompts.Count == 0) throw new PargsException("bench serve: no prompts");
        var table = new BenchTable($"pargs serve: {options.Method} (k = {options.K}, w = {options.W.ToString(CultureInfo.InvariantCulture)}) on {model}, {Math.Max(1, options.MaxTokens / 2)}–{options.MaxTokens / 2 + options.MaxTokens} tokens per request ({options.MaxTokens} on average), {options.RequestsPerStream} requests per stream, a distinct prompt per request",
            "streams", "requests", "tokens", "tok/s in flight", "× 1 stream", "ITL p50 ms", "ITL p99 ms", "ITL p99 ÷ 1 stream", "rows / step",
            "in-flight share of tokens %", "tok/s whole run", "× 1 stream, whole run", "ITL p99 ms, whole run", "rows / step, whole run",
            "TTFT p50 ms", "TTFT p99 ms", "CPU cores busy", "client parse CPU %");
        using var http = new HttpClient { BaseAddress = serverUrl, Timeout = TimeSpan.FromMinutes(30) };
        int nextPrompt = 0;
        (string Prompt, int MaxTokens) NextPrompt() => (options.Prompts[nextPrompt % options.Prompts.Count], MaxTokensOf(options, nextPrompt++));
        // The one-stream baseline runs before every other level and again after them, and its row combines both runs (see
        // the notes): one stream of the 15M shape is bound by memory bandwidth, which this host's neighbours move 2× within
        // minutes, so a baseline measured once, minutes from the 16-stream level, moved every ratio with it.
        var order = new List<int>();
        bool baselineTwice = options.Concurrency.Contains(1) && options.Concurrency.Any(c => c != 1);
        if (baselineTwice) order.Add(1);
        order.AddRange(options.Concurrency.Where(c => !baselineTwice || c != 1));
        if (baselineTwice) order.Add(1);
        string? jitWarmUp = options.JitWarmUpSeconds > 0 ? await WarmUpUntilJitSettles(http, model, options, options.Concurrency.Max(), NextPrompt, log) : null;
        var levels = new List<Level>();
        foreach (int streams in order)
        {
            log?.Invoke($"{streams} concurrent stream(s){(baselineTwice && streams == 1 ? (levels.Count == 0 ? " (baseline, before the others)" : " (baseline, after the others)") : "")}: warm-up…");
            var warmUp = Enumerable.Range(0, streams).Select(_ => NextPrompt()).ToArray();
            await Task.WhenAll(warmUp.Select((request, stream) => OneRequest(http, model, options, request.Prompt, request.MaxTokens, seed: -1 - stream, Stopwatch.StartNew())));
            log?.Invoke($"{streams} concurrent stream(s)…");
            var prompts = Enumerable.Range(0, streams * options.RequestsPerStream).Select(_ => NextPrompt()).ToArray();
            levels.Add(await RunLevel(http, model, options, streams, prompts, baselineTwice && streams == 1 ? (levels.Count == 0 ? " (baseline before)" : " (baseline after)") : ""));
        }
        var baseline = levels.Where(l => l.Streams == 1).ToList();
        Level? single = baseline.Count switch { 0 => null, 1 => baseline[0], _ => Level.Combine(baseline) };
        double singleRate = single?.Rate ?? double.NaN, singleItl99 = single is null ? double.NaN : Percentile(single.Gaps, 99);
        var profiles = new List<string>();
        foreach (int streams in options.Concurrency.Distinct())
        {
            var level = streams == 1 && single is not null ? single : levels.First(l => l.Streams == streams);
            double windowItl99 = Percentile(level.WindowGaps, 99);
            string Ratio(double value, double by) => double.IsFinite(value) && double.IsFinite(by) && by > 0 ? (value / by).ToString("F2", CultureInfo.InvariantCulture) : "–";
            string Rows(double rowSteps, double steps) => steps > 0 ? (rowSteps / steps).ToString("F1", CultureInfo.InvariantCulture) : "–";
            table.Add(streams.ToString(), level.Requests.ToString(), level.Tokens.ToString(), level.WindowRate.ToString("F0", CultureInfo.InvariantCulture),
                Ratio(level.WindowRate, singleRate), Ms(Percentile(level.WindowGaps, 50)), Ms(windowItl99), Ratio(windowItl99, singleItl99),
                Rows(level.WindowRowSteps, level.WindowSteps),
                level.Tokens > 0 ? (100.0 * level.WindowTokens / level.Tokens).ToString("F0", CultureInfo.InvariantCulture) : "–",
                level.Rate.ToString("F0", CultureInfo.InvariantCulture), Ratio(level.Rate, singleRate), Ms(Percentile(level.Gaps, 99)),
                Rows(level.RowSteps, level.Steps),
                Ms(Percentile(level.FirstTokens, 50)), Ms(Percentile(level.FirstTokens, 99)),
                (level.ProcessCpu / level.Seconds).ToString("F2", CultureInfo.InvariantCulture),
                level.ProcessCpu <= 0 ? "–" : (100 * level.ClientCpu / level.ProcessCpu).ToString("F1", CultureInfo.InvariantCulture));
        }
        foreach (var level in levels) if (level.Profile is { } profile) profiles.Add(profile);
        table.Notes.Add("In flight: every stream of the level has a request running from the level's start until the moment the first stream has received the end of its last request; " +
            "tok/s in flight, ITL and rows / step are taken over that window (the tokens whose text arrived in it — a chunk's tokens counted by its request's completion tokens ÷ chunks —, the gaps that end in it, the server's batched steps up to it), " +
            "and \"× 1 stream\" is its rate over one stream's. The whole run (drain included: the streams that still have requests after the first one finished, ever fewer rows per step) is in its own columns; in-flight share: the window's tokens ÷ the level's.");
        if (baselineTwice && baseline.Count == 2)
            table.Notes.Add(string.Create(CultureInfo.InvariantCulture, $"1 stream: the baseline runs before the other levels and again after them (its own requests each time), and its row combines both runs (tokens over their summed time; ITL percentiles over both runs' gaps): {baseline[0].Rate:F0} / {baseline[1].Rate:F0} tok/s, ITL p99 {Ms(Percentile(baseline[0].Gaps, 99))} / {Ms(Percentile(baseline[1].Gaps, 99))} ms before / after, so that a ratio does not swing with the host's speed drifting between the levels."));
        table.Notes.Add("TTFT: time from sending a request to its first text; ITL: time between consecutive text chunks of one stream. Each level starts with an untimed round of one request per stream (warm-up); every request has its own prompt.");
        table.Notes.Add("Loopback HTTP with server-sent events; clients and server share this process and its cores. The server's backend batches concurrent requests continuously (BatchingGenerationBackend over ContinuousDecoder): streams join the running batch at its next step. " +
            "rows / step: rows the server's batched steps advanced on average; CPU cores busy: the process's CPU time ÷ wall time (whole run); client parse CPU %: the load generator's event parsing (thread CPU time around it) as a share of the process's CPU time (HttpClient's own socket work not included).");
        if (jitWarmUp is not null) table.Notes.Add(jitWarmUp);
        table.Notes.AddRange(profiles);
        return table;
    }

    /// <summary>Untimed rounds of <paramref name="streams"/> concurrent requests until the JIT settles or the time is up (<see cref="JitSettle"/>); returns the note that says how it went.</summary>
    static async Task<string> WarmUpUntilJitSettles(HttpClient http, string model, ServeBenchmarkOptions options, int streams, Func<(string Prompt, int MaxTokens)> nextPrompt, Action<string>? log)
    {
        log?.Invoke($"JIT warm-up: rounds of {streams} concurrent request(s) until the JIT settles (at most {options.JitWarmUpSeconds:F0} s)…");
        var warmUp = await JitSettle.WarmUp(async () =>
        {
            var requests = Enumerable.Range(0, streams).Select(_ => nextPrompt()).ToArray();
            await Task.WhenAll(requests.Select((r, stream) => OneRequest(http, model, options, r.Prompt, r.MaxTokens, seed: -1000 - stream, Stopwatch.StartNew())));
        }, options.JitWarmUpSeconds);
        return $"JIT warm-up before the levels (untimed): {warmUp.Describe($"{streams} concurrent request(s)", options.JitWarmUpSeconds)}. .NET recompiles hot methods in the background for ~10–15 s of load after they first run; the levels are measured after it.";
    }

    /// <summary>One timed level: its whole run and its in-flight window (from its start until the first stream has finished all its requests).</summary>
    sealed record Level(int Streams, int Requests, long Tokens, double Seconds, List<double> FirstTokens, List<double> Gaps, double ClientCpu, double ProcessCpu,
                        double RowSteps, double Steps, double WindowSeconds, double WindowTokens, List<double> WindowGaps, double WindowRowSteps, double WindowSteps, string? Profile)
    {
        public double Rate => Tokens / Seconds;
        public double WindowRate => WindowTokens / WindowSeconds;

        /// <summary>Runs of one level as one: tokens, time, CPU and steps summed, latencies pooled (the window is the whole run at one stream).</summary>
        public static Level Combine(IReadOnlyList<Level> runs) => new(runs[0].Streams, runs.Sum(r => r.Requests), runs.Sum(r => r.Tokens), runs.Sum(r => r.Seconds),
            runs.SelectMany(r => r.FirstTokens).ToList(), runs.SelectMany(r => r.Gaps).ToList(), runs.Sum(r => r.ClientCpu), runs.Sum(r => r.ProcessCpu),
            runs.Sum(r => r.RowSteps), runs.Sum(r => r.Steps), runs.Sum(r => r.WindowSeconds), runs.Sum(r => r.WindowTokens),
            runs.SelectMany(r => r.WindowGaps).ToList(), runs.Sum(r => r.WindowRowSteps), runs.Sum(r => r.WindowSteps), null);
    }

    static async Task<Level> RunLevel(HttpClient http, string model, ServeBenchmarkOptions options, int streams, (string Prompt, int MaxTokens)[] prompts, string label)
    {
        var results = new List<RequestResult>();
        var before = await Counters(http);
        var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var threadsBefore = ProcessThreadsCpu.Take();
        var gcBefore = (Gen0: GC.CollectionCount(0), Gen1: GC.CollectionCount(1), Gen2: GC.CollectionCount(2), Pause: GC.GetTotalPauseDuration(), Bytes: GC.GetTotalAllocatedBytes());
        var clock = Stopwatch.StartNew();
        // The window's end: the first stream to finish all its requests records the time and reads the server's counters.
        double windowEnd = double.NaN;
        Task<Dictionary<string, double>>? atWindowEnd = null;
        int finished = 0;
        double lastEnd = 0;
        await Task.WhenAll(Enumerable.Range(0, streams).Select(async stream =>
        {
            for (int r = 0; r < options.RequestsPerStream; r++)
            {
                var (prompt, maxTokens) = prompts[stream * options.RequestsPerStream + r];
                var result = await OneRequest(http, model, options, prompt, maxTokens, seed: stream * 1000 + r, clock);
                lock (results) results.Add(result);
            }
            double end = clock.Elapsed.TotalSeconds;
            lock (results) lastEnd = Math.Max(lastEnd, end);
            if (Interlocked.Increment(ref finished) == 1)
            {
                windowEnd = end;
                atWindowEnd = Counters(http);
                await atWindowEnd;
            }
        }));
        double seconds = lastEnd; // the last stream's last text, not the window's /metrics read after it
        var threadsAfter = ProcessThreadsCpu.Take();
        process.Refresh();
        double cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
        var after = await Counters(http);
        var windowCounters = await atWindowEnd!;
        double Delta(string name) => after.GetValueOrDefault(name) - before.GetValueOrDefault(name);
        double WindowDelta(string name) => windowCounters.GetValueOrDefault(name) - before.GetValueOrDefault(name);
        // A chunk is one token but where a stop string or an unfinished UTF-8 character held text back: each request's
        // chunks in the window count as its completion tokens ÷ its chunks.
        double windowTokens = results.Sum(r => r.Times.Count == 0 ? 0 : r.Times.Count(t => t <= windowEnd) * (double)r.Tokens / r.Times.Count);
        var windowGaps = results.SelectMany(r => Enumerable.Range(1, Math.Max(0, r.Times.Count - 1)).Where(i => r.Times[i] <= windowEnd).Select(i => r.Times[i] - r.Times[i - 1])).ToList();
        long tokens = results.Sum(r => (long)r.Tokens);
        // Garbage collection in the level (server and clients share the process): a pause stalls every stream at once,
        // so it is a suspect for the inter-token latency's tail.
        string gc = string.Create(CultureInfo.InvariantCulture, $"GC: {GC.CollectionCount(0) - gcBefore.Gen0} gen0, {GC.CollectionCount(1) - gcBefore.Gen1} gen1, " +
            $"{GC.CollectionCount(2) - gcBefore.Gen2} gen2 collections, {(GC.GetTotalPauseDuration() - gcBefore.Pause).TotalMilliseconds:F1} ms paused, " +
            $"{(GC.GetTotalAllocatedBytes() - gcBefore.Bytes) / Math.Max(1, tokens) / 1024.0:F1} KiB allocated per token");
        string? profile = after.ContainsKey("pargs_worker_cpu_seconds_total") ? Profile($"{streams} stream(s){label}", seconds, cpu, Delta) + ". " + gc : null;
        // Where the process's CPU went, by kind of thread (always: a few /proc reads per level).
        if (threadsAfter.Since(threadsBefore, tokens) is { } byThread)
            profile = (profile is null ? "" : profile + "\n- ") + $"CPU by thread, {streams} stream(s){label}: {byThread}";
        return new Level(streams, results.Count, tokens, seconds, results.Select(r => r.First).ToList(), results.SelectMany(r => r.Gaps).ToList(),
            results.Sum(r => r.ParseCpuSeconds), cpu, Delta("pargs_decoder_row_steps_total"), Delta("pargs_decoder_steps_total"),
            windowEnd, windowTokens, windowGaps, WindowDelta("pargs_decoder_row_steps_total"), WindowDelta("pargs_decoder_steps_total"), profile);
    }

    /// <summary>With PARGS_SERVE_PROFILE=1 on the server: where the worker's time went in the level, per step and phase (CPU time, wall time).</summary>
    static string Profile(string level, double wall, double processCpu, Func<string, double> delta)
    {
        double steps = delta("pargs_worker_timed_steps_total"), rows = delta("pargs_worker_timed_row_steps_total");
        // RmScore and RmCommit run inside Choose: Choose's own share is the rule's sampling and bookkeeping.
        IEnumerable<(string Name, double Seconds)> Parts(string metric)
        {
            double Phase(StepPhaseTimes.Phase p) => delta($"{metric}{{phase=\"{p}\"}}");
            return StepPhaseTimes.Phases.Select(p => p == StepPhaseTimes.Phase.Choose
                ? ("Choose (rule, sampling)", Phase(p) - Phase(StepPhaseTimes.Phase.RmScore) - Phase(StepPhaseTimes.Phase.RmCommit))
                : (p.ToString(), Phase(p)));
        }
        string Ms(double seconds) => (1000 * seconds / steps).ToString("F3", CultureInfo.InvariantCulture);
        string Line(string metric) => $"total {Ms(Parts(metric).Sum(x => x.Seconds))}: " + string.Join(", ", Parts(metric).Select(x => $"{x.Name} {Ms(x.Seconds)}"));
        return $"profile, {level}: {steps:F0} steps, {rows / steps:F1} rows/step, worker CPU {delta("pargs_worker_cpu_seconds_total"):F2} s of the process's " +
               $"{processCpu:F2} s over {wall:F2} s wall. Worker phases, CPU ms per step: {Line("pargs_worker_phase_cpu_seconds_total")}. Wall ms per step: {Line("pargs_worker_phase_seconds_total")}";
    }

    /// <summary>The server's /metrics samples, by name with labels.</summary>
    static async Task<Dictionary<string, double>> Counters(HttpClient http)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in (await http.GetStringAsync("metrics")).Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int space = line.LastIndexOf(' ');
            if (space > 0 && double.TryParse(line.AsSpan(space + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out double value)) values[line[..space]] = value;
        }
        return values;
    }

    /// <summary>One request: its time to first text, the level clock's time of each text chunk (and the gaps between them), its completion tokens.</summary>
    sealed record RequestResult(double First, List<double> Times, int Tokens, double ParseCpuSeconds)
    {
        public IEnumerable<double> Gaps => Enumerable.Range(1, Math.Max(0, Times.Count - 1)).Select(i => Times[i] - Times[i - 1]);
    }

    /// <summary>
    /// Request <paramref name="index"/>'s max_tokens: spread evenly over MaxTokens/2 … 3·MaxTokens/2 (mean MaxTokens). Real
    /// requests differ in length; equal lengths keep streams that start together in lockstep — all leaving and joining
    /// in the same step, so no running row ever waits for another's prefill — which flatters inter-token latency.
    /// </summary>
    static int MaxTokensOf(ServeBenchmarkOptions o, int index) => Math.Max(1, o.MaxTokens / 2 + (int)(index * 7919L % (o.MaxTokens + 1)));

    static async Task<RequestResult> OneRequest(HttpClient http, string model, ServeBenchmarkOptions o, string prompt, int maxTokens, int seed, Stopwatch clock)
    {
        string body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = model, ["prompt"] = prompt, ["max_tokens"] = maxTokens, ["seed"] = seed, ["stream"] = true,
            ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
            ["method"] = o.Method, ["k"] = o.K, ["w"] = o.W,
        });
        double sent = clock.Elapsed.TotalSeconds; // the level's clock: chunk times of all its streams on one axis
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode) throw new PargsException($"bench serve: the server answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        using var stream = await response.Content.ReadAsStreamAsync();
        var events = new ServerSentEvents();
        var buffer = new byte[8192];
        int filled = 0;
        double parseCpu = 0;
        while (true)
        {
            if (filled == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
            int read = await stream.ReadAsync(buffer.AsMemory(filled));
            if (read == 0) break;
            double cpuStart = ThreadCpuClock.Seconds();
            filled += read;
            int consumed = events.Read(buffer.AsSpan(0, filled), clock.Elapsed.TotalSeconds);
            buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
            filled -= consumed;
            parseCpu += ThreadCpuClock.Seconds() - cpuStart;
        }
        return new RequestResult((events.Times.Count > 0 ? events.Times[0] : clock.Elapsed.TotalSeconds) - sent, events.Times, events.Tokens, parseCpu);
    }

    /// <summary>A completions stream's events, read from raw bytes: when text arrived, and the usage's completion tokens.</summary>
    sealed class ServerSentEvents
    {
        /// <summary>When each chunk with text arrived.</summary>
        public List<double> Times { get; } = new();
        public int Tokens { get; private set; }

        /// <summary>Reads the complete lines of <paramref name="bytes"/>; returns how many bytes they took.</summary>
        public int Read(ReadOnlySpan<byte> bytes, double now)
        {
            int consumed = 0;
            while (bytes[consumed..].IndexOf((byte)'\n') is var end and >= 0)
            {
                var line = bytes.Slice(consumed, end);
                consumed += end + 1;
                if (line.StartsWith("data: "u8) && !line.SequenceEqual("data: [DONE]"u8)) Event(line[6..], now);
            }
            return consumed;
        }

        void Event(ReadOnlySpan<byte> json, double now)
        {
            var reader = new Utf8JsonReader(json);
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName) continue;
                if (reader.ValueTextEquals("text"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String || reader.ValueSpan.Length == 0) continue; // one chunk per choice with text
                    Times.Add(now);
                }
                else if (reader.ValueTextEquals("completion_tokens"u8))
                {
                    reader.Read();
                    Tokens = reader.GetInt32();
                }
            }
        }
    }

    static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.OrderBy(v => v).ToList();
        int rank = (int)Math.Ceiling(p / 100 * sorted.Count); // nearest rank
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    static string Ms(double seconds) => double.IsNaN(seconds) ? "–" : (seconds * 1000).ToString("F1", CultureInfo.InvariantCulture);
}
