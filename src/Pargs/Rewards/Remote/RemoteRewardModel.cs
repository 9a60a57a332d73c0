using System.Text.Json;
using System.Text.Json.Nodes;
using Pargs.Decoding;
using Pargs.Engine;
using Pargs.Engine.Remote;
using Pargs.Models;
using Pargs.Tokenizers;
using static TorchSharp.torch;

namespace Pargs.Rewards.Remote;

/// <summary>Which HTTP protocol a remote reward model speaks.</summary>
public enum RemoteRmProtocol
{
    /// <summary><c>pargs serve</c>'s <c>POST /v1/rewards</c>.</summary>
    Pargs,
    /// <summary>Hugging Face text-embeddings-inference <c>POST /predict</c> with <c>raw_scores</c>.</summary>
    Tei,
    /// <summary>vLLM's pooling endpoint <c>POST /pooling</c> (a reward / sequence-classification model run with <c>--runner pooling</c>).</summary>
    Vllm,
}

public sealed record RemoteRmOptions
{
    public required Uri Url { get; init; }
    public RemoteRmProtocol Protocol { get; init; } = RemoteRmProtocol.Pargs;
    /// <summary>The served reward model's name (pargs, vllm); null = the first one the server lists.</summary>
    public string? Model { get; init; }
    public int Concurrency { get; init; } = 16;
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public int Retries { get; init; } = 4;
    public TimeSpan RetryBase { get; init; } = TimeSpan.FromMilliseconds(250);
    public string? ApiKey { get; init; }
    /// <summary>
    /// Send a row's request as soon as a remote LM's answer for that row is in, not after the step's slowest row
    /// (<see cref="Decoding.IPrefetchingScorer"/>; the same requests, earlier). Default on; PARGS_RM_PREFETCH=0 turns it off
    /// (A/B runs of one build).
    /// </summary>
    public bool Prefetch { get; init; } = Environment.GetEnvironmentVariable("PARGS_RM_PREFETCH") != "0";

    public static RemoteRmProtocol ParseProtocol(string name) => name.ToLowerInvariant() switch
    {
        "pargs" => RemoteRmProtocol.Pargs,
        "tei" => RemoteRmProtocol.Tei,
        "vllm" => RemoteRmProtocol.Vllm,
        _ => throw new PargsException($"--rm-protocol {name}: expected pargs, tei or vllm"),
    };
}

/// <summary>
/// A reward model served elsewhere, scoring the LM's text: a candidate v of a row is scored as the text of
/// prompt + sequence + v (the LM tokenizer's decoding, special tokens left out, an incomplete last UTF-8 character
/// held back), which the server tokenizes with its own tokenizer and BOS as its model was trained. The k candidates of
/// a row travel in one request, the rows of a step concurrently. Unlike a local reward model no prefix is cached here
/// (the server's own prefix caching, where it has one, does that), and an LM end-of-sequence is not passed on as the
/// reward model's EOS (text has none). In token-id mode (below) the ids go as they are, special tokens included — what a
/// local reward model sharing the LM's vocabulary reads, so remote and local rewards agree; the text path's rewards can
/// differ from them where a sequence holds special tokens.
/// <list type="bullet">
/// <item><c>pargs</c>: <c>POST /v1/rewards {"model", "input": [texts]}</c> → <c>{"data": [{"index", "reward"}]}</c>; when the
/// served reward model's tokenizer is the LM's (<see cref="SendsTokenIds"/>, checked at connect), <c>"input": [[ids], …]</c>
/// (OpenAI's embeddings shape): the LM's own ids, as a local reward model sharing the LM's vocabulary reads them.</item>
/// <item><c>tei</c>: <c>POST /predict {"inputs": [[text], …], "raw_scores": true}</c> → <c>[[{"score", "label"}], …]</c>
/// (router/src/http/types.rs at commit 02506d0b3879596c20905951425d16f09be1a556: a batch is a list of one-string lists);
/// one label per text, the reward model's single head output before any sigmoid/softmax.</item>
/// <item><c>vllm</c>: <c>POST /pooling {"model", "input": [texts]}</c> → <c>{"data": [{"index", "data": …}]}</c> (docs
/// "Pooling Models", v0.10–v0.11): a number, a one-element list, or per-token rows (reward models' ALL pooling), of which
/// the last token's is the sequence's reward.</item>
/// </list>
/// </summary>
public sealed class RemoteRewardModel : IRewardModel, IDisposable
{
    readonly RemoteRmOptions options;
    readonly RemoteHttp http;
    readonly ITokenizer lmTokenizer;
    readonly string? model;
    readonly Uri baseUrl;
    /// <summary>pargs serve's /v1/rewards, built once: every row's every step posts there.</summary>
    readonly Uri rewardsUrl;

    /// <param name="lm">The language model whose text is scored (its tokenizer decodes the candidates).</param>
    public RemoteRewardModel(RemoteRmOptions options, LanguageModelInfo lm)
    {
        this.options = options;
        lmTokenizer = lm.Tokenizer ?? throw new PargsException($"{lm.Source}: a remote reward model scores text, and the LM has no tokenizer to write it");
        baseUrl = options.Url.AbsoluteUri.EndsWith('/') ? options.Url : new Uri(options.Url.AbsoluteUri + "/");
        if (baseUrl.Scheme is not ("http" or "https")) throw new PargsException($"--rm-url {options.Url}: expected an http:// or https:// address");
        rewardsUrl = new Uri(baseUrl, "v1/rewards");
        http = new RemoteHttp(options.Concurrency, options.RequestTimeout, options.Retries, options.RetryBase, options.ApiKey);
        // Scored through the LM's text, the candidates are LM ids: the vocabularies "agree" by construction.
        Config = new ModelConfig { VocabSize = lm.VocabSize, MaxPositions = lm.MaxPositions };
        try
        {
            model = options.Protocol == RemoteRmProtocol.Tei ? null : options.Model ?? FirstModel();
            if (options.Protocol == RemoteRmProtocol.Pargs) SendsTokenIds = SameTokenizer(lm);
            if (SendsTokenIds) SendsSharedPrefix = TakesSharedPrefix();
            setupRequests = http.Requests;
        }
        catch { http.Dispose(); throw; }
        Source = $"{baseUrl} ({options.Protocol.ToString().ToLowerInvariant()}{(model is null ? "" : ": " + model)})";
    }

    public ModelConfig Config { get; }
    /// <summary>None here: the server tokenizes the text itself.</summary>
    public ITokenizer? Tokenizer => null;
    public string Source { get; }

    /// <summary>Requests sent (attempts, retries included), the connection's checks left out.</summary>
    public long Requests => http.Requests - setupRequests;
    long setupRequests;

    /// <summary>
    /// Whether candidates travel as token ids (<c>pargs</c> protocol, when the served reward model's tokenizer is the LM's):
    /// the reward model then reads the LM's own ids — as a local reward model sharing the LM's vocabulary does — and
    /// neither side decodes or tokenizes text. Otherwise texts.
    /// </summary>
    public bool SendsTokenIds { get; private set; }

    /// <summary>
    /// Whether a row's k candidates go as <c>{"prefix": [ids], "input": [[candidate], …]}</c> — the row's prefix once — rather
    /// than k whole sequences (which repeat the prefix k times: O(k · length) numbers to write here and parse there, per
    /// row and step). Token-id mode against a pargs serve that takes <c>prefix</c> (asked at connect; an older one refuses
    /// the field and gets whole sequences). The server scores the same sequences either way.
    /// </summary>
    public bool SendsSharedPrefix { get; private set; }

    /// <summary>What the tokenizer comparison found (for the log).</summary>
    public string TokenizerCheck { get; private set; } = "texts (the protocol carries text)";

    /// <summary>
    /// Is the served reward model's tokenizer the LM's? Compared as the LM's is (<see cref="Engine.Remote.TokenizerCheck"/>):
    /// the probe strings through pargs serve's /tokenize under the reward model's name, and its vocabulary, which must hold
    /// every LM id. A server that does not tokenize for its reward models (an older pargs serve, an encoder reward model)
    /// gets texts.
    /// </summary>
    bool SameTokenizer(LanguageModelInfo lm)
    {
        var url = new Uri(baseUrl, "tokenize");
        foreach (var text in Engine.Remote.TokenizerCheck.Probes)
        {
            var (probe, ours, _) = Engine.Remote.TokenizerCheck.Probe(lmTokenizer, text);
            JsonDocument? answer;
            try { answer = http.TryAsync(HttpMethod.Post, url, JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["model"] = model, ["prompt"] = probe, ["add_special_tokens"] = true })).GetAwaiter().GetResult(); }
            catch (PargsException e)
            {
                // An older pargs serve refuses a reward model's name there (400); texts work with any of them.
                TokenizerCheck = $"texts: {url} does not tokenize for the reward model ({e.Message})";
                return false;
            }
            if (answer is null)
            {
                TokenizerCheck = $"texts: {url} does not exist";
                return false;
            }
            using (answer)
            {
                var root = answer.RootElement;
                if (!root.TryGetProperty("tokens", out var tokens) || tokens.ValueKind != JsonValueKind.Array
                    || !root.TryGetProperty("vocab_size", out var vocab) || !vocab.TryGetInt32(out int rmVocab))
                    throw new PargsException($"{url}: the answer has no 'tokens' list and 'vocab_size'");
                var theirs = tokens.EnumerateArray().Select(t => t.TryGetInt32(out int id) ? id : -1).ToArray();
                if (!theirs.SequenceEqual(ours))
                {
                    TokenizerCheck = $"texts: the reward model's tokenizer is not the LM's (\"{probe.ReplaceLineEndings(" ")}\" is [{string.Join(", ", ours)}] for the LM, [{string.Join(", ", theirs)}] for the reward model)";
                    return false;
                }
                if (rmVocab < lm.VocabSize)
                {
                    TokenizerCheck = $"texts: the reward model's vocabulary ({rmVocab}) is smaller than the LM's ({lm.VocabSize})";
                    return false;
                }
            }
        }
        TokenizerCheck = $"token ids: {Engine.Remote.TokenizerCheck.Probes.Length} probe strings tokenize identically for the LM and the reward model, whose vocabulary holds the LM's";
        return true;
    }

    /// <summary>
    /// Does the server take /v1/rewards' <c>prefix</c>? One request (not counted in <see cref="Requests"/>) over a probe
    /// string's ids. Only a 400 that names <c>prefix</c> (an older pargs serve refusing the field) means no: a busy or
    /// failing server (429/5xx, a timeout — after the usual retries) is an error, not a reason to send whole sequences
    /// for the rest of the session.
    /// </summary>
    bool TakesSharedPrefix()
    {
        var ids = Engine.Remote.TokenizerCheck.Probe(lmTokenizer, Engine.Remote.TokenizerCheck.Probes[0]).Ids;
        if (ids.Length < 2) return false;
        var body = JsonSerializer.SerializeToUtf8Bytes(new JsonObject
        {
            ["model"] = model,
            ["prefix"] = new JsonArray(ids[..^1].Select(id => (JsonNode)id).ToArray()),
            ["input"] = new JsonArray(new JsonArray(ids[^1])),
        });
        try
        {
            using var answer = http.TryAsync(HttpMethod.Post, rewardsUrl, body).GetAwaiter().GetResult();
            if (answer is null) return false;
            ReadChecked(answer.RootElement, 1, rewardsUrl, "the answer to a 'prefix' request");
        }
        catch (PargsException e) when (e.InnerException is RemoteStatusException { Status: 400 } refusal
            && (refusal.Param == "prefix" || refusal.ServerMessage.Contains("prefix", StringComparison.Ordinal)))
        {
            TokenizerCheck += $"; whole sequences per candidate ({rewardsUrl} does not take 'prefix': {e.Message})";
            return false;
        }
        TokenizerCheck += "; a row's prefix sent once per request ('prefix')";
        return true;
    }

    string FirstModel()
    {
        var url = new Uri(baseUrl, "v1/models");
        using var doc = http.GetAsync(url).GetAwaiter().GetResult();
        if (!doc.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
            throw new PargsException($"{url}: the answer has no 'data' list of models");
        foreach (var m in data.EnumerateArray())
        {
            // pargs serve marks its kinds; vLLM serves one model.
            bool reward = !m.TryGetProperty("pargs_kind", out var kind) || kind.GetString() == "reward_model";
            if (reward && m.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String) return id.GetString()!;
        }
        throw new PargsException($"{url}: the server lists no reward model");
    }

    /// <summary>The text a reward model reads for LM ids: their decoding, special tokens left out, a trailing incomplete character held back.</summary>
    public string TextOf(IEnumerable<int> lmIds) => lmTokenizer.Decode(lmIds, skipSpecial: true).TrimEnd('\uFFFD');

    /// <summary>The rewards of <paramref name="texts"/>, in order, in one request.</summary>
    public async Task<float[]> ScoreAsync(IReadOnlyList<string> texts)
    {
        var (url, body) = Request(texts);
        using var doc = await http.PostAsync(url, body).ConfigureAwait(false);
        return ReadChecked(doc.RootElement, texts.Count, url, "the answer");
    }

    public float[] Score(IReadOnlyList<string> texts) => Rewards(BeginTexts(texts), texts.Count);

    /// <summary>
    /// The rewards of token-id sequences (<see cref="SendsTokenIds"/>), in one request: sequence j is
    /// <paramref name="prefix"/> followed by <paramref name="tails"/>[j]. The body is written here, on the caller's thread
    /// (the prefix is read where it is held, not copied), then sent as it is.
    /// </summary>
    RemoteCall BeginIds(ReadOnlySpan<int> prefix, IReadOnlyList<int[]> tails)
        => http.Begin(HttpMethod.Post, rewardsUrl, RewardsBody(model, prefix, tails, SendsSharedPrefix && prefix.Length > 0).WrittenMemory);

    /// <summary>The rewards of a row's candidates as texts, in one request, sent now (<see cref="RemoteHttp.Begin"/>).</summary>
    RemoteCall BeginTexts(IReadOnlyList<string> texts)
    {
        var (url, body) = Request(texts);
        return http.Begin(HttpMethod.Post, url, body);
    }

    /// <summary>The <paramref name="count"/> rewards a call begun by <see cref="BeginIds"/> or <see cref="BeginTexts"/> answers.</summary>
    float[] Rewards(RemoteCall call, int count)
    {
        using var doc = call.Wait();
        return ReadChecked(doc.RootElement, count, call.Url, "the answer");
    }

    /// <summary>
    /// The /v1/rewards body of token-id sequences: <paramref name="shared"/>, the prefix once then the tails; else each
    /// tail after its own copy of the prefix. The buffer starts at the size that form takes (≈ 6 bytes an id), so it
    /// neither grows while written nor holds k prefixes' room for one.
    /// </summary>
    internal static System.Buffers.ArrayBufferWriter<byte> RewardsBody(string? model, ReadOnlySpan<int> prefix, IReadOnlyList<int[]> tails, bool shared)
    {
        long tailIds = 0;
        foreach (var tail in tails) tailIds += tail.Length + 2;
        long ids = shared ? prefix.Length + 2 + tailIds : (long)tails.Count * prefix.Length + tailIds;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>((int)Math.Min(64 + (model?.Length ?? 0) + 6 * ids, Array.MaxLength));
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("model", model);
            if (shared)
            {
                w.WriteStartArray("prefix");
                foreach (int id in prefix) w.WriteNumberValue(id);
                w.WriteEndArray();
            }
            w.WriteStartArray("input");
            foreach (var tail in tails)
            {
                w.WriteStartArray();
                if (!shared)
                    foreach (int id in prefix) w.WriteNumberValue(id);
                foreach (int id in tail) w.WriteNumberValue(id);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer;
    }

    (Uri Url, byte[] Body) Request(IReadOnlyList<string> texts)
    {
        var input = new JsonArray(texts.Select(t => (JsonNode)t).ToArray());
        return options.Protocol switch
        {
            RemoteRmProtocol.Pargs => (rewardsUrl, JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["model"] = model, ["input"] = input })),
            RemoteRmProtocol.Vllm => (new Uri(baseUrl, "pooling"), JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["model"] = model, ["input"] = input })),
            RemoteRmProtocol.Tei => (new Uri(baseUrl, "predict"), JsonSerializer.SerializeToUtf8Bytes(new JsonObject
            {
                ["inputs"] = new JsonArray(texts.Select(t => (JsonNode)new JsonArray(t)).ToArray()),
                ["raw_scores"] = true,
            })),
            _ => throw new ArgumentOutOfRangeException(nameof(options.Protocol)),
        };
    }

    /// <summary><see cref="Read"/>, a malformed answer reported as a <see cref="PargsException"/> naming the URL and the body.</summary>
    float[] ReadChecked(JsonElement root, int count, Uri url, string what)
    {
        try { return Read(root, count, url); }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException or IndexOutOfRangeException)
        {
            throw new PargsException($"{url}: {what} is not in the expected shape ({e.Message}): {Shorten(root.GetRawText())}");
        }
    }

    float[] Read(JsonElement root, int count, Uri url)
    {
        var rewards = new float[count];
        var seen = new bool[count];
        switch (options.Protocol)
        {
            case RemoteRmProtocol.Tei:
                if (root.GetArrayLength() != count) throw new FormatException($"{root.GetArrayLength()} predictions for {count} texts");
                for (int i = 0; i < count; i++)
                {
                    var labels = root[i];
                    if (labels.GetArrayLength() != 1)
                        throw new PargsException($"{url}: the model has {labels.GetArrayLength()} labels; a reward model has one (num_labels = 1)");
                    rewards[i] = Float(labels[0].GetProperty("score"));
                    seen[i] = true;
                }
                return rewards;
            default:
                foreach (var item in root.GetProperty("data").EnumerateArray())
                {
                    int index = item.GetProperty("index").GetInt32();
                    if (index < 0 || index >= count || seen[index]) throw new FormatException($"index {index} out of place");
                    rewards[index] = options.Protocol == RemoteRmProtocol.Pargs ? Float(item.GetProperty("reward")) : PooledReward(item.GetProperty("data"), url);
                    seen[index] = true;
                }
                if (seen.Contains(false)) throw new FormatException($"{seen.Count(s => s)} rewards for {count} texts");
                return rewards;
        }
    }

    /// <summary>vLLM's pooled output: a number, [number], or per-token rows whose last is the sequence's reward.</summary>
    static float PooledReward(JsonElement data, Uri url)
    {
        if (data.ValueKind == JsonValueKind.Number) return Float(data);
        if (data.ValueKind != JsonValueKind.Array || data.GetArrayLength() == 0) throw new FormatException("empty pooled output");
        var last = data[data.GetArrayLength() - 1];
        if (last.ValueKind == JsonValueKind.Array) // per token: the last token's output
        {
            if (last.GetArrayLength() != 1) throw new PargsException($"{url}: the pooled output has {last.GetArrayLength()} values per token; a reward model has one");
            return Float(last[0]);
        }
        if (data.GetArrayLength() != 1) throw new PargsException($"{url}: the pooled output has {data.GetArrayLength()} values; a reward model has one (is this an embedding model?)");
        return Float(data[0]);
    }

    static float Float(JsonElement value) => value.ValueKind == JsonValueKind.Number
        ? float.Parse(value.GetRawText(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture)
        : throw new FormatException($"expected a number, got {value.ValueKind}");

    static string Shorten(string text) => text.Length > 300 ? text[..300] + "…" : text;

    /// <summary>Rewards of whole sequences (Best-of-N, the reference engine): one request for the batch.</summary>
    public Tensor SequenceRewards(Tensor ids, Tensor valid)
    {
        long rows = ids.shape[0], length = ids.shape[1];
        var flat = ids.data<long>().ToArray();
        var mask = valid.data<bool>().ToArray();
        if (SendsTokenIds)
        {
            var sequences = Enumerable.Range(0, (int)rows)
                .Select(b => Enumerable.Range(0, (int)length).Where(t => mask[b * length + t]).Select(t => (int)flat[b * length + t]).ToArray())
                .ToArray();
            return tensor(Rewards(BeginIds([], sequences), sequences.Length));
        }
        var texts = Enumerable.Range(0, (int)rows)
            .Select(b => TextOf(Enumerable.Range(0, (int)length).Where(t => mask[b * length + t]).Select(t => (int)flat[b * length + t])))
            .ToArray();
        return tensor(Score(texts));
    }

    public ICandidateScorer OpenScorer(LanguageModelInfo lm, int capacity, CandidateScoringCounts counts) => new RemoteScorer(this, counts);

    /// <summary>Requests sent ahead of their step (<see cref="IPrefetchingScorer"/>) and how many the step then used.</summary>
    public long Prefetched => Interlocked.Read(ref prefetched);
    public long PrefetchesUsed => Interlocked.Read(ref prefetchesUsed);
    long prefetched, prefetchesUsed;

    /// <summary>
    /// Rows of LM ids; each step one request per active row with its k candidate texts. With token ids on the wire, a row's
    /// request is sent as soon as the LM's answer for it arrives (<see cref="Prefetch"/>: its first k candidates, k being the
    /// count the last step scored — a method scores the same number every step, and the first step's answers come from
    /// the prompts' prefill, which reports no row early), and the step takes it if it asks exactly that — else it asks anew.
    /// </summary>
    sealed class RemoteScorer(RemoteRewardModel rm, CandidateScoringCounts counts) : ICandidateScorer, IPrefetchingScorer
    {
        readonly List<List<int>> rows = new();
        long[] last = [];
        int lastK;
        // Per row: the candidates and request sent ahead for the coming step; written by the thread that reads the row's LM
        // answer (the decoding thread over sockets, a pool thread over HttpClient; one writer per row), read by the decoding
        // thread after the step's wait.
        (long[] Candidates, int PrefixLength, RemoteCall Call)?[] ahead = [];

        public int Rows => rows.Count;

        public void AddRows(IReadOnlyList<int[]> prompts)
        {
            DropPrefetches();
            rows.AddRange(prompts.Select(p => p.ToList()));
            ahead = new (long[], int, RemoteCall)?[rows.Count];
        }

        public void KeepRows(int[] keep)
        {
            DropPrefetches();
            var kept = keep.Select(r => rows[r].ToList()).ToList();
            rows.Clear();
            rows.AddRange(kept);
            ahead = new (long[], int, RemoteCall)?[rows.Count];
        }

        public void Prefetch(int row, long[] candidates)
        {
            int k = lastK;
            if (!rm.options.Prefetch || k <= 0 || !rm.SendsTokenIds || row < 0 || row >= rows.Count || row >= ahead.Length || candidates.Length < k) return;
            try
            {
                var first = candidates[..k];
                var prefix = rows[row];
                var call = rm.BeginIds(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(prefix), OneTokenTails(first));
                Interlocked.Increment(ref rm.prefetched);
                ahead[row] = (first, prefix.Count, call);
            }
            catch (Exception)
            {
                // A request that could not even be written is asked again by the step, which reports its error.
                ahead[row] = null;
            }
        }

        /// <summary>Each candidate as the one-token tail after a row's prefix (a /v1/rewards sequence per candidate).</summary>
        static int[][] OneTokenTails(ReadOnlySpan<long> candidates)
        {
            var tails = new int[candidates.Length][];
            for (int j = 0; j < tails.Length; j++) tails[j] = [(int)candidates[j]];
            return tails;
        }

        /// <summary>Unused prefetched requests, given up (<see cref="RemoteCall.Abandon"/>: a failure is not left unobserved).</summary>
        void DropPrefetches()
        {
            for (int b = 0; b < ahead.Length; b++)
                if (ahead[b] is { } unused)
                {
                    unused.Call.Abandon();
                    ahead[b] = null;
                }
        }

        public float[][] Score(Tensor candidates, IReadOnlyList<bool> active)
        {
            int columns = (int)candidates.shape[1];
            var ids = candidates.data<long>().ToArray();
            var calls = new RemoteCall?[rows.Count];
            int read = 0;
            try
            {
                for (int b = 0; b < rows.Count; b++)
                {
                    if (!active[b]) continue;
                    var prefix = rows[b];
                    if (b < ahead.Length && ahead[b] is { } sent && sent.PrefixLength == prefix.Count
                        && sent.Candidates.AsSpan().SequenceEqual(ids.AsSpan(b * columns, columns)))
                    {
                        // Asked ahead for exactly this row, prefix and candidates.
                        calls[b] = sent.Call;
                        ahead[b] = null;
                        Interlocked.Increment(ref rm.prefetchesUsed);
                        counts.FullForwards += columns;
                        continue;
                    }
                    calls[b] = rm.SendsTokenIds
                        ? rm.BeginIds(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(prefix), OneTokenTails(ids.AsSpan(b * columns, columns)))
                        : rm.BeginTexts(Enumerable.Range(0, columns).Select(j => rm.TextOf(prefix.Append((int)ids[b * columns + j]))).ToArray());
                    counts.FullForwards += columns;
                }
                DropPrefetches(); // a prefetch this step did not ask for (other candidates: a miss)
                var rewards = new float[rows.Count][];
                // In row order: the server scores the later rows while the earlier answers are read.
                for (; read < rows.Count; read++)
                    rewards[read] = calls[read] is { } call ? rm.Rewards(call, columns) : new float[columns];
                last = ids;
                lastK = columns;
                return rewards;
            }
            finally
            {
                for (int b = read; b < calls.Length; b++) calls[b]?.Abandon(); // after a failure: the unread rest
            }
        }

        public void Commit(int[] chosen)
        {
            for (int b = 0; b < rows.Count; b++) rows[b].Add((int)last[b * lastK + chosen[b]]);
        }

        public void Dispose() => DropPrefetches();
    }

    public void Dispose() => http.Dispose();
}
