using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Pargs.Benchmarks;

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
    /// <summary>Every request's prompt (text the served model's tokenizer reads).</summary>
    public string Prompt { get; init; } = "Once upon a time";
}

/// <summary>
/// `pargs bench serve`: concurrent streaming clients against a running server on loopback. Per concurrency level:
/// aggregate completion tokens/s over the level's wall time, and p50/p99 of time to first text and of the gaps
/// between text chunks (a chunk is usually one token; text a stop string or an unfinished UTF-8 character holds
/// back arrives with the next).
/// </summary>
public static class ServeBenchmark
{
    /// <summary>The name `bench serve --models 15m` serves its random stories15M-shaped pair under.</summary>
    public const string Model15M = "15m";

    /// <summary>
    /// The 15M shape: a random Llama of llama2.c's stories15M shape (<see cref="BenchmarkModels.Llama15MShape"/>) and a random
    /// reward model of the same shape as its guide, both reading ids through <see cref="IdTokenizer"/> ("&lt;17&gt;&lt;4&gt;…").
    /// Random weights cost what trained ones do. Returns the models and a 16-token prompt in that tokenizer's text.
    /// </summary>
    public static (ServedModels Models, string Prompt) Random15M()
    {
        var config = BenchmarkModels.Llama15MShape();
        var lm = BenchmarkModels.RandomLM(config, seed: 15);
        var rm = Pargs.Rewards.RewardModel.Create(config, seed: 16);
        rm.Tokenizer = new IdTokenizer(config.VocabSize);
        rm.Source = "(random weights, stories15M shape)";
        rm.eval();
        var models = new ServedModels().AddRewardModel(Model15M + "-rm", rm).AddLanguageModel(Model15M, lm);
        string prompt = string.Concat(BenchmarkModels.RandomPrompt(16, config.VocabSize, seed: 1).Select(id => $"<{id}>"));
        return (models, prompt);
    }

    public static async Task<BenchTable> RunAsync(Uri serverUrl, string model, ServeBenchmarkOptions options, Action<string>? log = null)
    {
        if (options.Concurrency.Count == 0 || options.Concurrency.Any(c => c < 1 || c > 256)) throw new PargsException("--concurrency: each level must be between 1 and 256");
        if (options.RequestsPerStream < 1) throw new PargsException($"--requests must be at least 1, got {options.RequestsPerStream}");
        var table = new BenchTable($"pargs serve: {options.Method} (k = {options.K}, w = {options.W.ToString(CultureInfo.InvariantCulture)}) on {model}, {options.MaxTokens} tokens per request, {options.RequestsPerStream} requests per stream",
            "streams", "requests", "tokens", "aggregate tok/s", "× 1 stream", "TTFT p50 ms", "TTFT p99 ms", "ITL p50 ms", "ITL p99 ms", "ITL p99 ÷ 1 stream");
        using var http = new HttpClient { BaseAddress = serverUrl, Timeout = TimeSpan.FromMinutes(30) };
        double? single = null, singleItl99 = null;
        log?.Invoke("warm-up…");
        await OneRequest(http, model, options, seed: -1); // untimed: the JIT, the server's first decoder and kernels
        foreach (int streams in options.Concurrency)
        {
            log?.Invoke($"{streams} concurrent stream(s)…");
            var firstTokens = new List<double>();
            var gaps = new List<double>();
            long tokens = 0;
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, streams).Select(async stream =>
            {
                for (int r = 0; r < options.RequestsPerStream; r++)
                {
                    var (first, chunkGaps, count) = await OneRequest(http, model, options, seed: stream * 1000 + r);
                    lock (gaps)
                    {
                        firstTokens.Add(first);
                        gaps.AddRange(chunkGaps);
                        tokens += count;
                    }
                }
            }));
            double seconds = clock.Elapsed.TotalSeconds;
            double throughput = tokens / seconds;
            single ??= streams == 1 ? throughput : null;
            double itl99 = Percentile(gaps, 99);
            singleItl99 ??= streams == 1 ? itl99 : null;
            table.Add(streams.ToString(), (streams * options.RequestsPerStream).ToString(), tokens.ToString(), throughput.ToString("F0", CultureInfo.InvariantCulture),
                single is { } s ? (throughput / s).ToString("F2", CultureInfo.InvariantCulture) : "–",
                Ms(Percentile(firstTokens, 50)), Ms(Percentile(firstTokens, 99)), Ms(Percentile(gaps, 50)), Ms(itl99),
                singleItl99 is { } i1 && !double.IsNaN(itl99) ? (itl99 / i1).ToString("F2", CultureInfo.InvariantCulture) : "–");
        }
        table.Notes.Add("TTFT: time from sending a request to its first text; ITL: time between consecutive text chunks of one stream. One untimed request first (warm-up).");
        table.Notes.Add("Loopback HTTP with server-sent events; clients and server share this process and its cores. The server's backend batches concurrent requests continuously (BatchingGenerationBackend over ContinuousDecoder): streams join the running batch at its next step.");
        return table;
    }

    static async Task<(double First, List<double> Gaps, int Tokens)> OneRequest(HttpClient http, string model, ServeBenchmarkOptions o, int seed)
    {
        string body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = model, ["prompt"] = o.Prompt, ["max_tokens"] = o.MaxTokens, ["seed"] = seed, ["stream"] = true,
            ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
            ["method"] = o.Method, ["k"] = o.K, ["w"] = o.W,
        });
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode) throw new PargsException($"bench serve: the server answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double? first = null, last = null;
        var gaps = new List<double>();
        int tokens = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
            using var chunk = JsonDocument.Parse(line[6..]);
            if (chunk.RootElement.TryGetProperty("usage", out var usage)) tokens = usage.GetProperty("completion_tokens").GetInt32();
            foreach (var choice in chunk.RootElement.GetProperty("choices").EnumerateArray())
            {
                if (choice.GetProperty("text").GetString() is not { Length: > 0 }) continue;
                double now = clock.Elapsed.TotalSeconds;
                if (last is { } previous) gaps.Add(now - previous); else first = now;
                last = now;
            }
        }
        return (first ?? clock.Elapsed.TotalSeconds, gaps, tokens);
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
