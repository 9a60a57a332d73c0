using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Pargs.Server;

/// <summary>
/// The server's counters in Prometheus' text exposition format (version 0.0.4): requests by endpoint and status,
/// prompt and completion tokens, requests running and queued, and histograms of request latency, time to first token
/// and time between tokens; and the process's own: CPU time, allocation, garbage collections, JIT compilation and
/// thread-pool work items, so that what a request costs outside the decoding worker can be read from two scrapes.
/// </summary>
public sealed class ServerMetrics
{
    static readonly double[] LatencyBuckets = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
    static readonly double[] TokenGapBuckets = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1 };

    readonly ConcurrentDictionary<(string Endpoint, int Status), long> requests = new();
    long promptTokens, completionTokens, running, rejected;
    readonly Histogram requestSeconds = new(LatencyBuckets), firstTokenSeconds = new(LatencyBuckets), interTokenSeconds = new(TokenGapBuckets);

    public void CountRequest(string endpoint, int status) => requests.AddOrUpdate((endpoint, status), 1, (_, n) => n + 1);
    public void CountTokens(int prompt, int completion)
    {
        Interlocked.Add(ref promptTokens, prompt);
        Interlocked.Add(ref completionTokens, completion);
    }
    public void Started() => Interlocked.Increment(ref running);
    public void Finished() => Interlocked.Decrement(ref running);
    public void Rejected() => Interlocked.Increment(ref rejected);
    public void ObserveRequest(double seconds) => requestSeconds.Observe(seconds);
    public void ObserveFirstToken(double seconds) => firstTokenSeconds.Observe(seconds);
    public void ObserveInterToken(double seconds) => interTokenSeconds.Observe(seconds);

    public string Render(int queueDepth, IReadOnlyList<BackendMetric>? backendMetrics = null)
    {
        var text = new StringBuilder();
        text.Append("# HELP pargs_requests_total HTTP requests answered, by endpoint and status.\n# TYPE pargs_requests_total counter\n");
        foreach (var ((endpoint, status), count) in requests.OrderBy(r => r.Key.Endpoint, StringComparer.Ordinal).ThenBy(r => r.Key.Status))
            text.Append($"pargs_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {count}\n");
        Counter(text, "pargs_prompt_tokens_total", "Prompt tokens of generation requests.", Interlocked.Read(ref promptTokens));
        Counter(text, "pargs_completion_tokens_total", "Tokens generated.", Interlocked.Read(ref completionTokens));
        Counter(text, "pargs_requests_rejected_total", "Requests refused with 429 because the queue was full.", Interlocked.Read(ref rejected));
        Gauge(text, "pargs_requests_running", "Requests admitted and not finished (running or queued).", Interlocked.Read(ref running));
        Gauge(text, "pargs_queue_depth", "Requests waiting for the decoding engine.", queueDepth);
        foreach (var group in (backendMetrics ?? []).GroupBy(m => m.Name))
        {
            text.Append($"# HELP {group.Key} {group.First().Help}\n# TYPE {group.Key} {(group.First().IsCounter ? "counter" : "gauge")}\n");
            foreach (var m in group)
                text.Append($"{m.Name}{(m.Labels is null ? "" : "{" + m.Labels + "}")} {m.Value.ToString("R", CultureInfo.InvariantCulture)}\n");
        }
        RuntimeCounters(text);
        requestSeconds.Render(text, "pargs_request_duration_seconds", "Time from a request's arrival to its last byte.");
        firstTokenSeconds.Render(text, "pargs_time_to_first_token_seconds", "Time from a generation request's admission to its first text.");
        interTokenSeconds.Render(text, "pargs_inter_token_latency_seconds", "Time between consecutive text chunks of a generation request.");
        return text.ToString();
    }

    /// <summary>
    /// The process's counters under the names Prometheus' client libraries use (process_cpu_seconds_total; prometheus-net's
    /// dotnet_* family). WHY: the server's CPU per streamed token outside the decoding worker (Kestrel, the events'
    /// JSON, thread-pool hand-offs, GC, JIT) is this CPU minus pargs_worker_cpu_seconds_total, and the work items and
    /// allocation per token say where it goes; all are cheap reads of the runtime's own counters.
    /// </summary>
    static void RuntimeCounters(StringBuilder text)
    {
        CounterSeconds(text, "process_cpu_seconds_total", "User and system CPU time of the server process.", Environment.CpuUsage.TotalTime.TotalSeconds);
        Counter(text, "dotnet_gc_allocated_bytes_total", "Bytes allocated on the managed heap by all threads.", GC.GetTotalAllocatedBytes());
        text.Append("# HELP dotnet_collection_count_total Garbage collections, by generation.\n# TYPE dotnet_collection_count_total counter\n");
        for (int generation = 0; generation <= GC.MaxGeneration; generation++)
            text.Append(CultureInfo.InvariantCulture, $"dotnet_collection_count_total{{generation=\"{generation}\"}} {GC.CollectionCount(generation)}\n");
        CounterSeconds(text, "dotnet_gc_pause_seconds_total", "Time the garbage collector paused the process.", GC.GetTotalPauseDuration().TotalSeconds);
        Counter(text, "dotnet_jit_compiled_methods_total", "Methods compiled by the JIT (each tier counts).", System.Runtime.JitInfo.GetCompiledMethodCount());
        CounterSeconds(text, "dotnet_jit_compilation_seconds_total", "Time spent in the JIT.", System.Runtime.JitInfo.GetCompilationTime().TotalSeconds);
        Counter(text, "dotnet_threadpool_completed_items_total", "Work items the thread pool ran (each a hand-off between threads).", ThreadPool.CompletedWorkItemCount);
        Gauge(text, "dotnet_threadpool_threads", "Thread-pool threads.", ThreadPool.ThreadCount);
        Counter(text, "dotnet_monitor_lock_contention_total", "Times a thread waited for a lock another held.", Monitor.LockContentionCount);
    }

    static void CounterSeconds(StringBuilder text, string name, string help, double seconds)
        => text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} counter\n{name} {seconds.ToString("R", CultureInfo.InvariantCulture)}\n");

    static void Counter(StringBuilder text, string name, string help, long value)
        => text.Append($"# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");

    static void Gauge(StringBuilder text, string name, string help, long value)
        => text.Append($"# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");

    sealed class Histogram(double[] bounds)
    {
        readonly long[] counts = new long[bounds.Length + 1];
        double sum;
        readonly object gate = new();

        public void Observe(double value)
        {
            lock (gate)
            {
                int i = 0;
                while (i < bounds.Length && value > bounds[i]) i++;
                counts[i]++;
                sum += value;
            }
        }

        public void Render(StringBuilder text, string name, string help)
        {
            long[] snapshot;
            double total;
            lock (gate) { snapshot = (long[])counts.Clone(); total = sum; }
            text.Append($"# HELP {name} {help}\n# TYPE {name} histogram\n");
            long cumulative = 0;
            for (int i = 0; i < bounds.Length; i++)
            {
                cumulative += snapshot[i];
                text.Append($"{name}_bucket{{le=\"{bounds[i].ToString(CultureInfo.InvariantCulture)}\"}} {cumulative}\n");
            }
            cumulative += snapshot[^1];
            text.Append($"{name}_bucket{{le=\"+Inf\"}} {cumulative}\n");
            text.Append($"{name}_sum {total.ToString("R", CultureInfo.InvariantCulture)}\n{name}_count {cumulative}\n");
        }
    }
}
