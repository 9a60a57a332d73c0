using Pargs.Decoding;
using Pargs.Rewards;
using Pargs.Tokenizers;

namespace Pargs.Engine.Remote;

/// <summary>
/// A language model served elsewhere (vLLM, llama.cpp, SGLang, pargs serve), steered from here: a session's rows are
/// token-id prefixes held on this side, and every step sends one request per row — the prefix, one new token, its top-k
/// log-probabilities — all rows concurrently (bounded by <see cref="RemoteLmOptions.Concurrency"/>, over pooled keep-alive
/// connections). The server's prefix cache (vLLM's automatic prefix caching, llama.cpp's cache_prompt, SGLang's radix
/// cache) makes each request cost about one token of compute. Forking rows (<see cref="ILanguageModelSession.KeepRows"/>)
/// and removing them cost nothing. The reward model stays with the caller: local (its own cached scorer) or remote
/// (<see cref="Rewards.Remote"/>). Methods that need the whole distribution are refused (<see cref="NextTokens.LogProbs"/>).
/// </summary>
public sealed class RemoteEngine : LanguageModelEngine, IDisposable
{
    readonly RemoteLmOptions options;
    readonly RemoteLmClient client;
    readonly RemoteHttp http;
    readonly LanguageModelInfo info;

    RemoteEngine(RemoteLmOptions options, RemoteLmClient client, RemoteHttp http, LanguageModelInfo info)
    {
        this.options = options;
        this.client = client;
        this.http = http;
        this.info = info;
    }

    public override LanguageModelInfo Info => info;

    /// <summary>Step requests sent (attempts, retries included).</summary>
    public long Requests => http.Requests - setupRequests;
    long setupRequests;

    /// <summary>Attempts that were retries.</summary>
    public long Retries => http.Retried;

    /// <summary>How step requests travel (pargs' own HTTP/1.1 connections, or HttpClient and why), for the log.</summary>
    public string Transport => http.TransportFor(client.StepUrl);

    /// <summary>What the tokenizer check compared (for the log).</summary>
    public IReadOnlyList<string> TokenizerChecks { get; private set; } = [];

    /// <summary>
    /// Connects: asks the server about its model, checks that <paramref name="tokenizer"/> is the server's (vocabulary size
    /// where the server reports it; probe strings through its tokenize endpoint where it has one), and returns the engine.
    /// A mismatch is refused with both values.
    /// </summary>
    public static RemoteEngine Connect(RemoteLmOptions options, ITokenizer tokenizer, int? eosTokenId = null, string? tokenizerSource = null)
    {
        if (options.TopK < 1) throw new PargsException($"the remote top-k must be at least 1, got {options.TopK}");
        var baseUrl = options.Url.AbsoluteUri.EndsWith('/') ? options.Url : new Uri(options.Url.AbsoluteUri + "/");
        if (baseUrl.Scheme is not ("http" or "https")) throw new PargsException($"--lm-url {options.Url}: expected an http:// or https:// address");
        var client = RemoteLmClient.For(options.Protocol, baseUrl);
        var http = new RemoteHttp(options.Concurrency, options.RequestTimeout, options.Retries, options.RetryBase, options.ApiKey);
        try
        {
            var facts = client.DescribeAsync(http, options.Model).GetAwaiter().GetResult();
            var (checks, serverVocab) = TokenizerCheck.Run(client, http, facts, tokenizer, tokenizerSource ?? "--tokenizer");
            int context = options.ContextLength ?? facts.ContextLength ?? int.MaxValue;
            var info = new LanguageModelInfo($"{baseUrl} ({facts.Model ?? options.Protocol.ToString()})", tokenizer, serverVocab ?? tokenizer.VocabSize, context, eosTokenId ?? tokenizer.EosId);
            return new RemoteEngine(options, client, http, info) { TokenizerChecks = checks, setupRequests = http.Requests };
        }
        catch
        {
            http.Dispose();
            throw;
        }
    }

    /// <summary>The served LM's caches are the server's; a local reward model's, one per batch decoded at once, are checked here.</summary>
    public override void CheckFits(IRewardModel? rm, DecodingOptions options, int prompts, int longestPrompt)
        => DecodingMemory.Check(null, rm?.Config, options, prompts, longestPrompt, rmCache: (rm as RewardModel)?.Backbone.KvCacheType ?? Models.KvCacheType.F32);

    public override ILanguageModelSession OpenSession(int capacity) => new RemoteSession(this);

    /// <summary>The reward model's own scorer (local: over its cached prefix; remote: one request per row and step).</summary>
    public override ICandidateScorer OpenScorer(IRewardModel rm, int candidates, int capacity, CandidateScoringCounts counts)
        => rm.OpenScorer(Info, capacity + candidates, counts);

    /// <summary>The top-k of each prefix, all concurrently; a failure of any fails the step (no partial step).</summary>
    (float[][] LogProbs, long[][] Ids) Fetch(IReadOnlyList<int[]> prefixes)
    {
        var bodies = new ReadOnlyMemory<byte>[prefixes.Count];
        for (int i = 0; i < bodies.Length; i++) bodies[i] = StepBody(prefixes[i]);
        return Exchange(bodies, null);
    }

    /// <summary>
    /// As <see cref="Fetch(IReadOnlyList{int[]})"/>, over a session's rows as they are held (no copy of a row per step);
    /// <paramref name="answered"/> hears each row's answer as it is read (<see cref="IRowAnswerSource"/>).
    /// </summary>
    (float[][] LogProbs, long[][] Ids) Fetch(List<List<int>> rows, Action<int, long[]>? answered)
    {
        var bodies = new ReadOnlyMemory<byte>[rows.Count];
        for (int i = 0; i < bodies.Length; i++) bodies[i] = StepBody(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(rows[i]));
        return Exchange(bodies, answered);
    }

    /// <summary>A step body, written here on the caller's thread (the prefix is not kept); a row past the served context is refused before anything is sent.</summary>
    ReadOnlyMemory<byte> StepBody(ReadOnlySpan<int> prefix)
    {
        if (prefix.Length >= info.MaxPositions)
            throw new PargsException($"a row needs {prefix.Length + 1} positions but {info.Source} serves a context of {info.MaxPositions}");
        return client.StepBody(prefix, options.TopK);
    }

    /// <summary>
    /// Sends every row's step request, then reads the answers in row order (the server works on the later rows while the
    /// earlier are read). The first failure gives the rest up and fails the step.
    /// </summary>
    (float[][] LogProbs, long[][] Ids) Exchange(ReadOnlyMemory<byte>[] bodies, Action<int, long[]>? answered)
    {
        var calls = new RemoteCall[bodies.Length];
        var logProbs = new float[bodies.Length][];
        var ids = new long[bodies.Length][];
        int read = 0;
        try
        {
            for (int i = 0; i < calls.Length; i++) calls[i] = http.Begin(HttpMethod.Post, client.StepUrl, bodies[i]);
            for (; read < calls.Length; read++)
            {
                using var doc = calls[read].Wait();
                (ids[read], logProbs[read]) = client.ReadStep(doc.RootElement, options.TopK, info.VocabSize);
                answered?.Invoke(read, ids[read]);
            }
        }
        finally
        {
            for (int i = read; i < calls.Length; i++) calls[i]?.Abandon(); // after a failure: the unread rest (the failed call itself is already ended)
        }
        return (logProbs, ids);
    }

    sealed class RemoteSession(RemoteEngine engine) : ILanguageModelSession, IRowAnswerSource
    {
        public Action<int, long[]>? RowAnswered { private get; set; }

        readonly List<List<int>> rows = new();
        readonly List<(float[] LogProbs, long[] Ids)> next = new();

        public int Rows => rows.Count;

        public NextTokens AddRows(IReadOnlyList<int[]> prompts)
        {
            foreach (var p in prompts)
                if (p.Length == 0) throw new PargsException("a prompt has no tokens (add BOS or some text)");
            var (logProbs, ids) = engine.Fetch(prompts);
            for (int i = 0; i < prompts.Count; i++)
            {
                rows.Add(prompts[i].ToList());
                next.Add((logProbs[i], ids[i]));
            }
            return Current();
        }

        public NextTokens Append(long[] tokens)
        {
            if (tokens.Length != rows.Count) throw new ArgumentException($"{tokens.Length} tokens for {rows.Count} rows");
            for (int b = 0; b < rows.Count; b++) rows[b].Add((int)tokens[b]);
            var (logProbs, ids) = engine.Fetch(rows, RowAnswered);
            for (int b = 0; b < rows.Count; b++) next[b] = (logProbs[b], ids[b]);
            return Current();
        }

        public NextTokens KeepRows(int[] keep)
        {
            var keptRows = keep.Select(r => rows[r].ToList()).ToList();
            var keptNext = keep.Select(r => next[r]).ToList();
            rows.Clear(); rows.AddRange(keptRows);
            next.Clear(); next.AddRange(keptNext);
            return Current();
        }

        NextTokens Current() => new(next.Select(n => n.LogProbs).ToArray(), next.Select(n => n.Ids).ToArray(), engine.info.Source);

        public void Dispose() { }
    }

    public void Dispose() => http.Dispose();
}
