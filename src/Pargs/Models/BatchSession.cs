using Pargs.Models.Cpu;
using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// A batch of sequences extended token by token over one backbone's KV cache. Prompts of different
/// lengths are left-padded so that every row's newest token sits in the same cache slot; each row keeps its
/// own positions. Used for the base LM (one step per token) and for reward models (score k sibling
/// candidates in one forward, then commit the chosen one without another forward).
/// </summary>
public sealed class BatchSession : IDisposable
{
    readonly TransformerBackbone backbone;
    // The family's CPU decode kernel, when it has one: tried before the backbone's torch forward, which runs
    // whatever the kernel declines. The one place that decides which engine runs a cached forward.
    readonly IDecodeKernel? kernel;

    public BatchSession(TransformerBackbone backbone, int batchSize, int initialCapacity = 64)
    {
        this.backbone = backbone;
        kernel = backbone.Config.Family.CreateDecodeKernel(backbone);
        Cache = new KvCache(backbone.Config, batchSize, initialCapacity, backbone.KvCacheType);
    }

    public KvCache Cache { get; private set; }
    public int BatchSize => Cache.BatchSize;
    /// <summary>Committed tokens per row (padding excluded): the next token's position.</summary>
    public long[] NextPositions => Cache.CommittedTokens;

    /// <summary>Left-pads <paramref name="prompts"/>, runs them, commits them; returns the last position's hidden state [B, hidden].</summary>
    public Tensor Prefill(IReadOnlyList<int[]> prompts)
    {
        if (prompts.Count != BatchSize) throw new ArgumentException($"expected {BatchSize} prompts, got {prompts.Count}");
        var (ids, valid, longest) = PromptBatch.LeftPadded(prompts);
        var hidden = Append(ids, valid, longest);
        return hidden.select(1, longest - 1);
    }

    /// <summary>Runs and commits tokens [B, T] (valid [B, T], null = all real); returns hidden states [B, T, hidden].</summary>
    public Tensor Append(Tensor tokens, Tensor? valid = null)
    {
        int t = (int)tokens.shape[1];
        var validHost = valid is null ? Enumerable.Repeat(true, BatchSize * t).ToArray() : AttentionMasks.Host(valid);
        return Append(tokens, validHost, t);
    }

    /// <summary>Runs and commits <paramref name="ids"/> [B, T] (row-major) with <paramref name="valid"/> [B, T] marking real tokens.</summary>
    public Tensor Append(long[] ids, bool[] valid, int t) => Append(tensor(ids, BatchSize, t), valid, t);

    Tensor Append(Tensor tokens, bool[] valid, int t)
    {
        var committed = NextPositions;
        PromptBatch.EnsureContext(committed, valid, BatchSize, t, backbone.Config.MaxPositions);
        Cache.Reserve(t);
        var positions = tensor(AttentionMasks.Positions(committed, valid, BatchSize, t), BatchSize, t);
        var mask = AttentionMasks.Causal(Cache.ValidSlots, Cache.Capacity, Cache.Length, valid, BatchSize, t);
        var hidden = kernel?.TryForward(tokens, positions, mask, Cache) ?? backbone.Forward(tokens, positions, mask, Cache);
        Cache.Advance(valid, t);
        return hidden;
    }

    /// <summary>Runs and commits one token per row [B]; returns hidden states [B, hidden].</summary>
    public Tensor Step(Tensor tokens)
    {
        if (allValid?.Length != BatchSize) allValid = Enumerable.Repeat(true, BatchSize).ToArray(); // rows join and leave
        return Append(tokens.view(-1, 1), allValid, 1).select(1, 0);
    }

    bool[]? allValid;

    /// <summary>
    /// Hidden states [B, k, hidden] of k one-token extensions per row (<paramref name="candidates"/> [B, k]),
    /// each seeing only the committed prefix and itself. Nothing is committed; call
    /// <see cref="CommitSibling"/> with the chosen column. With two <see cref="CpuThreads"/> and enough rows the two
    /// rows run in parts on the two threads (the same bits as one forward; see <see cref="SplitByRows"/>).
    /// </summary>
    public Tensor Siblings(Tensor candidates)
    {
        int k = (int)candidates.shape[1];
        var next = NextPositions; // every candidate sits at the row's next position
        EnsureContext(next.Max() + 1);
        Cache.Reserve(k);
        var positions = new long[BatchSize * k];
        for (int b = 0; b < BatchSize; b++) Array.Fill(positions, next[b], b * k, k);
        var mask = AttentionMasks.Siblings(Cache.ValidSlots, Cache.Capacity, Cache.Length, BatchSize, k);
        var positionsTensor = tensor(positions, BatchSize, k);
        return SplitByRows(candidates, positionsTensor, mask, k)
            ?? kernel?.TryForward(candidates, positionsTensor, mask, Cache) ?? backbone.Forward(candidates, positionsTensor, mask, Cache);
    }

    /// <summary>
    /// The fewest new tokens each of two halves of a row-split forward runs. WHY a split by whole rows: with two cores and
    /// one decoding thread, a server's batched reward step (every row's k candidates over its own prefix) is the
    /// bottleneck while the second core idles, and splitting each 64-wide product or attention head over two threads
    /// costs more in hand-offs than it gives (docs/benchmarks.md). Parts of whole rows are one hand-off per forward.
    /// </summary>
    const int MinSplitTokens = 32;
    /// <summary>The fewest new tokens a part runs when the rows are cut into more than two parts (<see cref="MaxParts"/>).</summary>
    const int MinPartTokens = 16;

    /// <summary>
    /// How many parts of whole rows a split forward is cut into at most (PARGS_ROW_SPLIT_PARTS; 2 = fixed halves, as before).
    /// The two threads claim parts from a shared counter, so when the worker starts late or its core is taken by another
    /// thread (Kestrel's, the clients', another process's), the caller runs more parts instead of waiting for a fixed half:
    /// with halves, the caller's wait for a descheduled worker made the split slower than one thread on a shared machine.
    /// More parts cost more products of fewer rows (each packs the weights again): in bench gemm's sibling table four parts
    /// were level with halves within a shared machine's noise, so the default stays two (claimed the same way;
    /// docs/benchmarks.md).
    /// </summary>
    public static int MaxParts { get; set; } = int.TryParse(Environment.GetEnvironmentVariable("PARGS_ROW_SPLIT_PARTS"), out int parts) && parts >= 2 ? parts : 2;

    // The kernels of parts 1.. (their own scratch buffers), made on the first split that needs them; part 0 runs on `kernel`.
    readonly List<IDecodeKernel> partKernels = [];

    /// <summary>Whether forwards may split by rows (PARGS_ROW_SPLIT=0 turns it off: A/B runs of one build).</summary>
    public static bool RowSplit { get; set; } = Environment.GetEnvironmentVariable("PARGS_ROW_SPLIT") != "0";

    /// <summary>Forwards run as parts of rows on two threads so far (see <see cref="Siblings"/>).</summary>
    public long RowSplitForwards { get; private set; }

    /// <summary>Parts those forwards were cut into, in all.</summary>
    public long RowSplitParts { get; private set; }

    /// <summary>
    /// The forward of <paramref name="ids"/> [B, T] as forwards of parts of whole rows claimed by two <see cref="CpuThreads"/>,
    /// each on its own kernel over its rows of the cache (<see cref="KvCache.RowView"/>), when there are two threads, two halves
    /// would have at least <see cref="MinSplitTokens"/> tokens each and the kernel says every row keeps its bits; else null.
    /// Exactly two threads: with more, each part's nested products would run inline and the forward would use two of N threads.
    /// Not under autograd: the unsplit forward falls back to torch there (a graph), which the parts' no_grad would drop.
    /// </summary>
    Tensor? SplitByRows(Tensor ids, Tensor positions, Tensor mask, int perRow)
    {
        long total = (long)BatchSize * perRow;
        if (!RowSplit || kernel is null || CpuThreads.Count != 2 || is_grad_enabled() || (long)(BatchSize / 2) * perRow < MinSplitTokens || !kernel.RowSplitKeepsBits(total, (long)(BatchSize / 2) * perRow)) return null;
        // As many parts (up to MaxParts) as keep at least MinPartTokens each and every row's bits; else halves.
        int partCount = 2;
        for (int p = Math.Min(MaxParts, BatchSize); p > 2; p--)
            if ((long)(BatchSize / p) * perRow >= MinPartTokens && kernel.RowSplitKeepsBits(total, (long)(BatchSize / p) * perRow)) { partCount = p; break; }
        while (partKernels.Count < partCount - 1)
        {
            if (backbone.Config.Family.CreateDecodeKernel(backbone) is not { } more) return null;
            partKernels.Add(more);
        }
        var inputs = new (Tensor Ids, Tensor Positions, Tensor Mask, KvCache Cache)[partCount];
        var hidden = new Tensor?[partCount];
        try
        {
            for (int p = 0; p < partCount; p++)
            {
                int first = (int)((long)BatchSize * p / partCount), rows = (int)((long)BatchSize * (p + 1) / partCount) - first;
                inputs[p] = (ids.narrow(0, first, rows), positions.narrow(0, first, rows), mask.narrow(0, first, rows), Cache.RowView(first, rows));
            }
            int next = 0;
            // Each thread claims the next part until none is left (see MaxParts); a part's hidden states land at its index.
            CpuThreads.For(2, (_, _) =>
            {
                for (int p; (p = Interlocked.Increment(ref next) - 1) < partCount;)
                    hidden[p] = RunPart(p == 0 ? kernel : partKernels[p - 1], inputs[p]);
            });
            if (hidden.Any(h => h is null)) return null; // a part declined: the whole runs as usual
            RowSplitForwards++;
            RowSplitParts += partCount;
            return cat(hidden!, 0);
        }
        finally
        {
            foreach (var h in hidden) h?.Dispose();
            foreach (var input in inputs)
            {
                input.Ids?.Dispose(); input.Positions?.Dispose(); input.Mask?.Dispose(); input.Cache?.Dispose();
            }
        }
    }

    /// <summary>One part of <see cref="SplitByRows"/>, on whichever thread runs it; the result is owned by the caller.</summary>
    static Tensor? RunPart(IDecodeKernel kernel, (Tensor Ids, Tensor Positions, Tensor Mask, KvCache Cache) part)
    {
        using var _ = no_grad(); // gradient mode is per thread: a worker's is on, and the kernel declines under it
        using var scope = NewDisposeScope();
        return kernel.TryForward(part.Ids, part.Positions, part.Mask, part.Cache)?.DetachFromDisposeScope();
    }

    /// <summary>The longest row will need <paramref name="positionsNeeded"/> positions: it must fit the model's context.</summary>
    void EnsureContext(long positionsNeeded) => PromptBatch.EnsureFits(positionsNeeded, backbone.Config.MaxPositions);

    /// <summary>Commits column <paramref name="chosen"/>[b] of the last <see cref="Siblings"/> call as each row's next token.</summary>
    public void CommitSibling(long[] chosen) => Cache.CommitSibling(chosen);

    /// <summary>
    /// Adds one row per prompt after the existing rows (continuous batching: rows join between steps) and
    /// returns the new rows' last-position hidden states [n, hidden]. The prompts are prefilled in a batch of
    /// their own, then the two caches are joined right-aligned (<see cref="KvCache.Concat"/>): padding slots
    /// are never attended to and positions count real tokens only, so no row's numbers change.
    /// </summary>
    /// <param name="cachedPrefixes">
    /// With a prefix cache: the joining rows' already computed prefixes (one row each, owned by this call from now on);
    /// <paramref name="prompts"/> are then only the tokens that follow them.
    /// </param>
    public Tensor AddRows(IReadOnlyList<int[]> prompts, int capacity, KvCache? cachedPrefixes = null)
    {
        // The joining rows are prefilled into a cache of their own through this session (and its decode kernel,
        // built once per session, not once per join), then that cache is joined to the running one.
        var running = Cache;
        Cache = cachedPrefixes ?? new KvCache(backbone.Config, prompts.Count, capacity, backbone.KvCacheType);
        Tensor hidden;
        try { hidden = Prefill(prompts); }
        catch
        {
            Cache.Dispose(); // a prompt that cannot join leaves the running rows as they were
            Cache = running;
            throw;
        }
        Join(running, Cache);
        return hidden;
    }

    /// <summary>
    /// <paramref name="joining"/>'s rows after <paramref name="running"/>'s (both owned by this call) become the cache:
    /// into the storage of rows that left where it can (no copy of the running rows), else right-aligned by
    /// <see cref="KvCache.Concat"/>.
    /// </summary>
    void Join(KvCache running, KvCache joining)
    {
        if (running.BatchSize == 0)
        {
            Cache = joining;
            running.Dispose();
            return;
        }
        if (running.AppendRowsInPlace(joining)) Cache = running;
        else
        {
            Cache = KvCache.Concat(running, joining);
            running.Dispose();
        }
        joining.Dispose();
    }

    /// <summary>
    /// Adds rows whose every token is in <paramref name="rows"/> already (owned by this call from now on) after the existing
    /// rows, computing nothing: a server's kept prefixes, each extended by a kept sibling slot (<see cref="KvCache.AppendSlots"/>).
    /// </summary>
    public void AddCachedRows(KvCache rows) => Join(Cache, rows);

    /// <summary>
    /// Keeps the given rows (in that order, repeats allowed): turns one prompt into N samples after one
    /// prefill, and lets finished rows leave a continuous batch (leading slots no kept row uses are dropped).
    /// </summary>
    public void SelectRows(long[] rows)
    {
        if (Cache.KeepRowsInPlace(rows)) return; // rows leaving in order: no copy of the whole cache
        var old = Cache;
        Cache = old.SelectRows(rows);
        old.Dispose();
    }

    /// <summary>Hands the cache over (its rows all leave at once, kept elsewhere as they are) and starts over with no rows.</summary>
    public KvCache DetachCache()
    {
        var cache = Cache;
        Cache = new KvCache(backbone.Config, 0, 1, backbone.KvCacheType);
        return cache;
    }

    public void Dispose() => Cache.Dispose();
}
