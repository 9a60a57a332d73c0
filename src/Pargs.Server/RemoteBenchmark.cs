using System.Diagnostics;
using System.Globalization;
using Pargs.Benchmarks;
using Pargs.Decoding;
using Pargs.Decoding.Methods;
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
}

/// <summary>
/// `pargs bench remote`: PARGS through a RemoteEngine steering `pargs serve` on loopback, next to the local engine in the
/// same run, at 1, 4 and 16 rows in flight (one batch of that many prompts). Counted: LM requests per row and step
/// (exactly one when the engine does what it claims) and, with the reward model behind /v1/rewards too, RM requests.
/// </summary>
public static class RemoteBenchmark
{
    public static BenchTable Run(Uri serverUrl, CausalLM lm, IRewardModel rm, RemoteBenchmarkOptions options, Action<string>? log = null)
    {
        var table = new BenchTable($"remote engine: pargs (k = {options.K}, w = {options.W.ToString(CultureInfo.InvariantCulture)}) on stories260K, {options.MaxTokens} tokens per row, pargs serve on loopback",
            "rows in flight", "engine", "tokens", "tok/s", "× local", "LM requests / row / step", "RM requests / row / step");
        foreach (int rows in options.Rows)
        {
            var prompts = Enumerable.Range(0, rows).Select(i => $"Once upon a time, story {i}").ToArray();
            var decoding = new DecodingOptions
            {
                Method = new PargsOptions { K = options.K, W = options.W }, Seed = 1, MaxNewTokens = options.MaxTokens, StopAtEos = false, BatchSize = rows,
            };
            log?.Invoke($"{rows} row(s): local engine…");
            var clock = Stopwatch.StartNew();
            var local = TextGenerator.Generate(lm, rm, prompts, decoding);
            double localRate = local.Sum(r => r.TokenIds.Length) / clock.Elapsed.TotalSeconds;
            table.Add(rows.ToString(), "local", local.Sum(r => r.TokenIds.Length).ToString(), Rate(localRate), "1.00", "–", "–");

            using var engine = RemoteEngine.Connect(new RemoteLmOptions { Url = serverUrl, TopK = options.K, Concurrency = rows }, lm.Tokenizer!, lm.Config.EosTokenId);
            log?.Invoke($"{rows} row(s): remote LM, local RM…");
            clock.Restart();
            var remote = TextGenerator.Generate(engine, rm, prompts, decoding);
            double rate = remote.Sum(r => r.TokenIds.Length) / clock.Elapsed.TotalSeconds;
            if (!remote.Select(r => r.TokenIds).SequenceEqual(local.Select(r => r.TokenIds), new SameIds()))
                throw new PargsException("bench remote: the remote engine's tokens differ from the local engine's");
            long steps = (long)rows * options.MaxTokens;
            table.Add(rows.ToString(), "remote LM", remote.Sum(r => r.TokenIds.Length).ToString(), Rate(rate), (rate / localRate).ToString("F2", CultureInfo.InvariantCulture),
                PerStep(engine.Requests, steps), "local");

            using var engine2 = RemoteEngine.Connect(new RemoteLmOptions { Url = serverUrl, TopK = options.K, Concurrency = rows }, lm.Tokenizer!, lm.Config.EosTokenId);
            using var remoteRm = new RemoteRewardModel(new RemoteRmOptions { Url = serverUrl, Concurrency = rows }, engine2.Info);
            log?.Invoke($"{rows} row(s): remote LM, remote RM…");
            clock.Restart();
            var both = TextGenerator.Generate(engine2, remoteRm, prompts, decoding);
            double bothRate = both.Sum(r => r.TokenIds.Length) / clock.Elapsed.TotalSeconds;
            table.Add(rows.ToString(), "remote LM + RM", both.Sum(r => r.TokenIds.Length).ToString(), Rate(bothRate), (bothRate / localRate).ToString("F2", CultureInfo.InvariantCulture),
                PerStep(engine2.Requests, steps), PerStep(remoteRm.Requests, steps));
        }
        table.Notes.Add("Same seed, same tokens: the remote LM rows are checked token for token against the local engine's before they are reported.");
        table.Notes.Add("Client and server share this process and its cores; every request re-reads its whole prefix (pargs serve has no prefix cache yet), so a step of a row costs a prefill of the row's length on the server.");
        table.Notes.Add("With the RM remote too, candidates are scored as text by /v1/rewards (from scratch, no cached prefix): rewards differ in the last bits from the local cached scorer, so those rows are not compared.");
        return table;
    }

    static string Rate(double r) => r.ToString("F0", CultureInfo.InvariantCulture);

    static string PerStep(long requests, long rowSteps) => ((double)requests / rowSteps).ToString("F2", CultureInfo.InvariantCulture);

    sealed class SameIds : IEqualityComparer<int[]>
    {
        public bool Equals(int[]? a, int[]? b) => a!.SequenceEqual(b!);
        public int GetHashCode(int[] a) => a.Length;
    }
}
