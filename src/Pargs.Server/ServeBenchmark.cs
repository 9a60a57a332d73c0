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
    /// <summary>Requests each stream sends one after another.</summary>
    public int RequestsPerStream { get; init; } = 2;
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
}

/// <summary>
/// `pargs bench serve`: concurrent streaming clients against a running server on loopback. Per concurrency level: one
/// untimed round (a request per stream: JIT, thread pool growth, the decoder and kernels at that batch size), then the
/// timed requests — aggregate completion tokens/s over the level's wall time, p50/p99 of time to first text and of
/// the gaps between text chunks (a chunk is usually one token; text a stop string or an unfinished UTF-8 character
/// holds back arrives with the next), the server's rows per batched step, and the CPU the process and its clients used.
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

    public static async Task<BenchTable> RunAsync(Uri serverUrl, string model, ServeBenchmarkOptions options, Action<string>? log = null)
    {
        if (options.Concurrency.Count == 0 || options.Concurrency.Any(c => c < 1 || c > 256)) throw new PargsException("--concurrency: each level must be between 1 and 256");
        if (options.RequestsPerStream < 1) throw new PargsException($"--requests must be at least 1, got {options.RequestsPerStream}");
        if (options.Prompts.Count == 0) throw new PargsException("bench serve: no prompts");
        var table = new BenchTable($"pargs serve: {options.Method} (k = {options.K}, w = {options.W.ToString(CultureInfo.InvariantCulture)}) on {model}, {Math.Max(1, options.MaxTokens / 2)}–{options.MaxTokens / 2 + options.MaxTokens} tokens per request ({options.MaxTokens} on average), {options.RequestsPerStream} requests per stream, a distinct prompt per request",
            "streams", "requests", "tokens", "aggregate tok/s", "× 1 stream", "TTFT p50 ms", "TTFT p99 ms", "ITL p50 ms", "ITL p99 ms", "ITL p99 ÷ 1 stream",
            "rows / step", "CPU cores busy", "client parse CPU %");
        using var http = new HttpClient { BaseAddress = serverUrl, Timeout = TimeSpan.FromMinutes(30) };
        double? single = null, singleItl99 = null;
        int nextPrompt = 0;
        (string Prompt, int MaxTokens) NextPrompt() => (options.Prompts[nextPrompt % options.Prompts.Count], MaxTokensOf(options, nextPrompt++));
        var profiles = new List<string>();
        foreach (int streams in options.Concurrency)
        {
            log?.Invoke($"{streams} concurrent stream(s): warm-up…");
            var warmUp = Enumerable.Range(0, streams).Select(_ => NextPrompt()).ToArray();
            await Task.WhenAll(warmUp.Select((request, stream) => OneRequest(http, model, options, request.Prompt, request.MaxTokens, seed: -1 - stream)));
            log?.Invoke($"{streams} concurrent stream(s)…");
            var prompts = Enumerable.Range(0, streams * options.RequestsPerStream).Select(_ => NextPrompt()).ToArray();
            var firstTokens = new List<double>();
            var gaps = new List<double>();
            long tokens = 0;
            double clientCpu = 0;
            var before = await Counters(http);
            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            var gcBefore = (Gen0: GC.CollectionCount(0), Gen1: GC.CollectionCount(1), Gen2: GC.CollectionCount(2), Pause: GC.GetTotalPauseDuration(), Bytes: GC.GetTotalAllocatedBytes());
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, streams).Select(async stream =>
            {
                for (int r = 0; r < options.RequestsPerStream; r++)
                {
                    var (prompt, maxTokens) = prompts[stream * options.RequestsPerStream + r];
                    var result = await OneRequest(http, model, options, prompt, maxTokens, seed: stream * 1000 + r);
                    lock (gaps)
                    {
                        firstTokens.Add(result.First);
                        gaps.AddRange(result.Gaps);
                        tokens += result.Tokens;
                        clientCpu += result.ParseCpuSeconds;
                    }
                }
            }));
            double seconds = clock.Elapsed.TotalSeconds;
            process.Refresh();
            double cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
            var after = await Counters(http);
            double Delta(string name) => after.GetValueOrDefault(name) - before.GetValueOrDefault(name);
            double throughput = tokens / seconds;
            single ??= streams == 1 ? throughput : null;
            double itl99 = Percentile(gaps, 99);
            singleItl99 ??= streams == 1 ? itl99 : null;
            double rowsPerStep = Delta("pargs_decoder_row_steps_total") / Delta("pargs_decoder_steps_total");
            table.Add(streams.ToString(), (streams * options.RequestsPerStream).ToString(), tokens.ToString(), throughput.ToString("F0", CultureInfo.InvariantCulture),
                single is { } s ? (throughput / s).ToString("F2", CultureInfo.InvariantCulture) : "–",
                Ms(Percentile(firstTokens, 50)), Ms(Percentile(firstTokens, 99)), Ms(Percentile(gaps, 50)), Ms(itl99),
                singleItl99 is { } i1 && !double.IsNaN(itl99) ? (itl99 / i1).ToString("F2", CultureInfo.InvariantCulture) : "–",
                double.IsFinite(rowsPerStep) ? rowsPerStep.ToString("F1", CultureInfo.InvariantCulture) : "–",
                (cpu / seconds).ToString("F2", CultureInfo.InvariantCulture),
                double.IsNaN(clientCpu) || cpu <= 0 ? "–" : (100 * clientCpu / cpu).ToString("F1", CultureInfo.InvariantCulture));
            // Garbage collection in the level (server and clients share the process): a pause stalls every stream at once,
            // so it is a suspect for the inter-token latency's tail.
            string gc = string.Create(CultureInfo.InvariantCulture, $"GC: {GC.CollectionCount(0) - gcBefore.Gen0} gen0, {GC.CollectionCount(1) - gcBefore.Gen1} gen1, " +
                $"{GC.CollectionCount(2) - gcBefore.Gen2} gen2 collections, {(GC.GetTotalPauseDuration() - gcBefore.Pause).TotalMilliseconds:F1} ms paused, " +
                $"{(GC.GetTotalAllocatedBytes() - gcBefore.Bytes) / Math.Max(1, tokens) / 1024.0:F1} KiB allocated per token");
            if (after.ContainsKey("pargs_worker_cpu_seconds_total")) profiles.Add(Profile(streams, seconds, cpu, Delta) + ". " + gc);
        }
        table.Notes.Add("TTFT: time from sending a request to its first text; ITL: time between consecutive text chunks of one stream. Each level starts with an untimed round of one request per stream (warm-up); every request has its own prompt.");
        table.Notes.Add("Loopback HTTP with server-sent events; clients and server share this process and its cores. The server's backend batches concurrent requests continuously (BatchingGenerationBackend over ContinuousDecoder): streams join the running batch at its next step. " +
            "rows / step: rows the server's batched steps advanced on average; CPU cores busy: the process's CPU time ÷ wall time; client parse CPU %: the load generator's event parsing (thread CPU time around it) as a share of the process's CPU time (HttpClient's own socket work not included).");
        table.Notes.AddRange(profiles);
        return table;
    }

    /// <summary>With PARGS_SERVE_PROFILE=1 on the server: where the worker's time went in the level, per step and phase (CPU time, wall time).</summary>
    static string Profile(int streams, double wall, double processCpu, Func<string, double> delta)
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
        return $"profile, {streams} stream(s): {steps:F0} steps, {rows / steps:F1} rows/step, worker CPU {delta("pargs_worker_cpu_seconds_total"):F2} s of the process's " +
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

    sealed record RequestResult(double First, List<double> Gaps, int Tokens, double ParseCpuSeconds);

    /// <summary>
    /// Request <paramref name="index"/>'s max_tokens: spread evenly over MaxTokens/2 … 3·MaxTokens/2 (mean MaxTokens). Real
    /// requests differ in length; equal lengths keep streams that start together in lockstep — all leaving and joining
    /// in the same step, so no running row ever waits for another's prefill — which flatters inter-token latency.
    /// </summary>
    static int MaxTokensOf(ServeBenchmarkOptions o, int index) => Math.Max(1, o.MaxTokens / 2 + (int)(index * 7919L % (o.MaxTokens + 1)));

    static async Task<RequestResult> OneRequest(HttpClient http, string model, ServeBenchmarkOptions o, string prompt, int maxTokens, int seed)
    {
        string body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = model, ["prompt"] = prompt, ["max_tokens"] = maxTokens, ["seed"] = seed, ["stream"] = true,
            ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
            ["method"] = o.Method, ["k"] = o.K, ["w"] = o.W,
        });
        var clock = Stopwatch.StartNew();
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
        return new RequestResult(events.First ?? clock.Elapsed.TotalSeconds, events.Gaps, events.Tokens, parseCpu);
    }

    /// <summary>A completions stream's events, read from raw bytes: when text arrived, and the usage's completion tokens.</summary>
    sealed class ServerSentEvents
    {
        public double? First { get; private set; }
        double? last;
        public List<double> Gaps { get; } = new();
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
                    if (last is { } previous) Gaps.Add(now - previous); else First = now;
                    last = now;
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
