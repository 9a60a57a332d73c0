using Pargs.Decoding;
using Pargs.Models;
using Pargs.Models.Cpu;
using Pargs.Rewards;
using static TorchSharp.torch;

namespace Pargs.Engine;

/// <summary>
/// The local engine: a <see cref="BatchSession"/> (KV cache over ragged rows; the model family's CPU decode
/// kernel where it has one) under the model's head. The reward model scores candidates over its own cached
/// prefix (<see cref="IRewardModel.OpenScorer"/>).
/// </summary>
public sealed class LocalEngine : LanguageModelEngine
{
    readonly CausalLM lm;
    readonly PrefixCache? prefixCache;

    /// <param name="prefixCache">Where rows that leave a session keep their KV caches and joining rows look for their
    /// prompt's prefix (a server's steps); null = every prompt is prefilled whole.</param>
    public LocalEngine(CausalLM lm, PrefixCache? prefixCache = null)
    {
        this.lm = lm;
        this.prefixCache = prefixCache;
    }

    public override LanguageModelInfo Info => lm.Info;

    public override void CheckFits(IRewardModel? rm, DecodingOptions options, int prompts, int longestPrompt)
        => DecodingMemory.Check(lm.Config, rm?.Config, options, prompts, longestPrompt,
                                lmCache: lm.Backbone.KvCacheType, rmCache: (rm as RewardModel)?.Backbone.KvCacheType ?? KvCacheType.F32);

    /// <summary>
    /// Whether rows that all leave at once keep the session's cache as it is in the prefix cache (no copy per row; see
    /// LocalSession.KeepAllShared). PARGS_PREFIX_SHARED=0 turns it off: A/B runs of one build.
    /// </summary>
    public static bool KeepLeavingCaches { get; set; } = Environment.GetEnvironmentVariable("PARGS_PREFIX_SHARED") != "0";

    public override ILanguageModelSession OpenSession(int capacity) => new LocalSession(lm, capacity, prefixCache);

    public override ICandidateScorer OpenScorer(IRewardModel rm, int candidates, int capacity, CandidateScoringCounts counts)
        => rm.OpenScorer(Info, capacity + candidates, counts);

    sealed class LocalSession : ILanguageModelSession
    {
        readonly CausalLM lm;
        readonly BatchSession session;
        readonly int capacity;
        readonly PrefixCache? prefixCache;
        readonly List<List<int>>? rowIds; // with a prefix cache: the ids each row's KV cache holds
        Tensor? logProbs; // [B, V] of the last step, held across steps (outside any dispose scope)

        public LocalSession(CausalLM lm, int capacity, PrefixCache? prefixCache)
        {
            this.lm = lm;
            this.capacity = capacity;
            this.prefixCache = prefixCache;
            rowIds = prefixCache is null ? null : new();
            session = new BatchSession(lm.Backbone, 0, capacity);
        }

        public int Rows => session.BatchSize;

        public NextTokens AddRows(IReadOnlyList<int[]> prompts)
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var added = LogProbsOf(prefixCache is null ? session.AddRows(prompts, capacity) : AddFromPrefixCache(prompts));
            return Keep(logProbs is null || logProbs.shape[0] == 0 ? added : cat([logProbs, added]));
        }

        public int TokensToRun(int[] prompt) => prompt.Length - (prefixCache?.KeptLength(prompt) ?? 0);

        /// <summary>Each joining row starts from the longest kept prefix of its prompt and computes only the rest.</summary>
        Tensor AddFromPrefixCache(IReadOnlyList<int[]> prompts)
        {
            var found = prompts.Select(p => prefixCache!.Find(p)).ToArray();
            KvCache? prefixes = null;
            var rest = prompts.Select((p, i) => p[found[i].Length..]).ToArray();
            // Room for the rest of the prompts and what the rows are expected to generate past them (the session's capacity
            // hint beyond the longest prompt, at least a token), not the whole hint again: a remote client's step request
            // (a prompt one token longer than its last, one token generated) needs one slot, and every spare slot is
            // zeroed here at every step. A row that runs longer grows the cache by doubling (KvCache.Reserve).
            int spare = rest.Max(r => r.Length) + Math.Max(1, capacity - prompts.Max(p => p.Length));
            if (found.Any(f => f.Cache is not null))
                prefixes = KvCache.StackRows(found.Select(f => (f.Cache, f.Row, f.FirstSlot, f.Length)).ToArray(), spare);
            var hidden = session.AddRows(rest, capacity, prefixes);
            foreach (var p in prompts) rowIds!.Add([.. p]);
            return hidden;
        }

        public NextTokens Append(long[] tokens)
        {
            // The heap pages the last step's [B, V] tensors freed go back to the system before this step allocates
            // (at most every 50 ms; docs/benchmarks.md, "Resident memory, fourth pass").
            Checkpoints.FreedHeapPages.Trim();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var hidden = session.Step(tensor(tokens));
            if (rowIds is not null)
                for (int b = 0; b < tokens.Length; b++) rowIds[b].Add((int)tokens[b]);
            return Keep(LogProbsOf(hidden));
        }

        public NextTokens KeepRows(int[] rows)
        {
            using var scope = NewDisposeScope();
            if (rowIds is not null && rows.Length == 0 && rowIds.Count > 0 && KeepLeavingCaches && KeepAllShared())
                return Keep(logProbs!.narrow(0, 0, 0));
            if (rowIds is not null)
            {
                // Rows that leave keep their caches for a later request that extends them.
                var kept = new HashSet<int>(rows);
                for (int b = 0; b < rowIds.Count; b++)
                    if (!kept.Contains(b)) prefixCache!.Add([.. rowIds[b]], session.Cache.CompactRow(b));
                var ids = rows.Select(r => new List<int>(rowIds[r])).ToList();
                rowIds.Clear();
                rowIds.AddRange(ids);
            }
            var keptRows = rows.Select(r => (long)r).ToArray();
            session.SelectRows(keptRows);
            return Keep(KeptLogProbs(keptRows));
        }

        /// <summary>
        /// The kept rows of the last step's log-probabilities. In place when each kept row comes from its own index or a later
        /// one (rows leaving a continuous batch, ContinuousDecoder's swap-remove): only the rows that move are copied, and the
        /// tensor becomes a view of its first rows. WHY: index_select wrote a fresh [B, V] (1.6 MB at 13 rows of 32,000, its
        /// pages faulted in anew after the step's heap trim) at every leave; the previous answer is invalid after this call either way.
        /// </summary>
        unsafe Tensor KeptLogProbs(long[] rows)
        {
            var all = logProbs!;
            float* data = all.dim() == 2 ? TensorMemory.Floats(all) : null;
            if (data == null || !KeptRows.MoveDownInPlace(rows, all.shape[0])) return all.index_select(0, tensor(rows));
            long vocab = all.shape[1], rowBytes = vocab * sizeof(float);
            for (int r = 0; r < rows.Length; r++) // in increasing r (KeptRows.MoveDownInPlace)
                if (rows[r] != r) Buffer.MemoryCopy(data + rows[r] * vocab, data + r * vocab, rowBytes, rowBytes);
            return all.narrow(0, 0, rows.Length);
        }

        /// <summary>
        /// Every row leaves (a server step whose one-token requests all finished): the session's cache goes to the prefix cache
        /// as it is, each row an entry referring to it (<see cref="PrefixCache.AddShared"/>) — no row is copied — and the
        /// session starts over with an empty cache. Only when most of the cache is the rows' own keys/values (a cache
        /// mostly padding or spare slots is copied out compactly, as before, so that the byte budget keeps what it did);
        /// false = nothing done.
        /// </summary>
        bool KeepAllShared()
        {
            var ids = rowIds!;
            if (!prefixCache!.Shareable(session.Cache, ids.Select(r => r.Count).ToArray())) return false;
            prefixCache.AddAll(session.DetachCache(), ids.Select(r => r.ToArray()).ToArray());
            ids.Clear();
            return true;
        }

        Tensor LogProbsOf(Tensor hidden) => DecodingSteps.LogSoftmax(lm.LogitsFromHidden(hidden));

        NextTokens Keep(Tensor next)
        {
            var old = logProbs;
            logProbs = next.DetachFromDisposeScope();
            if (!ReferenceEquals(old, logProbs)) old?.Dispose();
            return new NextTokens(logProbs);
        }

        public void Dispose()
        {
            logProbs?.Dispose();
            session.Dispose();
        }
    }
}
