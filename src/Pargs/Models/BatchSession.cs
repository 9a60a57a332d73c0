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
        using var scope = NewDisposeScope(); // see Scoped
        var (ids, valid, longest) = PromptBatch.LeftPadded(prompts);
        var hidden = Append(ids, valid, longest);
        return scope.MoveToOuter(hidden.select(1, longest - 1));
    }

    /// <summary>Runs and commits tokens [B, T] (valid [B, T], null = all real); returns hidden states [B, T, hidden].</summary>
    public Tensor Append(Tensor tokens, Tensor? valid = null)
    {
        int t = (int)tokens.shape[1];
        var validHost = valid is null ? Enumerable.Repeat(true, BatchSize * t).ToArray() : AttentionMasks.Host(valid);
        using var scope = NewDisposeScope(); // see Scoped
        return scope.MoveToOuter(Append(tokens, validHost, t));
    }

    /// <summary>Runs and commits <paramref name="ids"/> [B, T] (row-major) with <paramref name="valid"/> [B, T] marking real tokens.</summary>
    public Tensor Append(long[] ids, bool[] valid, int t)
    {
        using var scope = NewDisposeScope(); // see Scoped
        return scope.MoveToOuter(Append(tensor(ids, BatchSize, t), valid, t));
    }

    /// <summary>
    /// Scoped: every public method of a session runs its torch ops inside a DisposeScope of its own and hands its result
    /// out of it (<c>MoveToOuter</c>). WHY: TorchSharp 0.107 frees a tensor's native handle in its finalizer, so an
    /// intermediate that nothing references any more (a mask built for one forward, <c>view(-1, 1)</c> of the tokens)
    /// can be freed by a collection on another thread while libtorch reads it; a scope's set holds it until the call
    /// returns, then frees it at once. The cache's own buffers detach themselves from every scope (<see cref="KvCache"/>).
    /// </summary>
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
        using var scope = NewDisposeScope(); // see Scoped
        return scope.MoveToOuter(Append(tokens.view(-1, 1), allValid, 1).select(1, 0));
    }

    bool[]? allValid;

    /// <summary>Whether <see cref="SiblingsOfRows"/> takes a forward of <paramref name="tokens"/> candidates (the decode kernel's say; else the caller stacks the rows).</summary>
    public bool TakesRowSiblings(long tokens) => kernel is not null && backbone.KvCacheType == KvCacheType.F32 && kernel.TakesRows(tokens);

    /// <summary>
    /// <see cref="Siblings"/> over rows that each live in a one-row cache of their own (not this session's): hidden states
    /// [B, k, hidden] of k one-token extensions of each row (<paramref name="candidates"/> [B, k]), each candidate seeing its
    /// row's real slots and itself; their keys/values are written past each row's length, uncommitted (a row keeps one with
    /// <see cref="KvCache.CommitSibling"/>). The same numbers as <see cref="Siblings"/> over the rows stacked into this
    /// session's cache, without the stacking — where the decode kernel takes it (<see cref="TakesRowSiblings"/>); else the rows
    /// are stacked into this session's cache (which must be empty) for the forward and each row's candidate slots copied back.
    /// </summary>
    public Tensor SiblingsOfRows(IReadOnlyList<KvCache> rows, Tensor candidates)
    {
        int b = rows.Count, k = (int)candidates.shape[1];
        if (candidates.shape[0] != b) throw new ArgumentException($"expected {b} rows of candidates, got {candidates.shape[0]}");
        using var scope = NewDisposeScope(); // see Scoped
        if (!TakesRowSiblings((long)b * k)) return scope.MoveToOuter(StackedSiblings(rows, candidates, k));
        int length = 0;
        long furthest = 0;
        foreach (var row in rows)
        {
            row.Reserve(k);
            length = Math.Max(length, row.Length);
            furthest = Math.Max(furthest, row.CommittedTokens[0]);
        }
        EnsureContext(furthest + 1);
        int slots = length + k;
        var positions = new long[b * k];
        var mask = new bool[(long)b * k * slots];
        for (int r = 0; r < b; r++)
        {
            var row = rows[r];
            Array.Fill(positions, row.CommittedTokens[0], r * k, k); // every candidate sits at the row's next position
            for (int i = 0; i < k; i++)
            {
                long at = ((long)r * k + i) * slots;
                Array.Copy(row.ValidSlots, 0, mask, at + length - row.Length, row.Length); // right-aligned: the padding stays masked
                mask[at + length + i] = true;
            }
        }
        var hidden = kernel!.TryForwardRows(candidates, tensor(positions, b, k), tensor(mask, new long[] { b, 1, k, slots }), rows)
            ?? StackedSiblings(rows, candidates, k); // declined (e.g. weights it cannot read in place): the forward as it always ran
        return scope.MoveToOuter(hidden);
    }

    /// <summary><see cref="SiblingsOfRows"/> through this session's cache: the rows stacked, the forward, each row's k slots copied back.</summary>
    Tensor StackedSiblings(IReadOnlyList<KvCache> rows, Tensor candidates, int k)
    {
        if (Cache.BatchSize != 0) throw new InvalidOperationException("siblings over separate rows need the session's own cache empty");
        AddCachedRows(KvCache.StackRows(rows.Select(r => ((KvCache?)r, 0, 0, r.Length)).ToArray(), k));
        try
        {
            var hidden = Siblings(candidates);
            for (int r = 0; r < rows.Count; r++)
            {
                rows[r].Reserve(k);
                rows[r].CopySlotsPastLength(Cache, r, k);
            }
            return hidden;
        }
        finally { SelectRows([]); }
    }

    /// <summary>
    /// Hidden states [B, k, hidden] of k one-token extensions per row (<paramref name="candidates"/> [B, k]),
    /// each seeing only the committed prefix and itself. Nothing is committed; call
    /// <see cref="CommitSibling"/> with the chosen column. With two <see cref="CpuThreads"/> and enough rows the two
    /// halves of the rows run on the two threads (the same bits as one forward; see <see cref="MinSplitTokens"/>).
    /// </summary>
    public Tensor Siblings(Tensor candidates)
    {
        int k = (int)candidates.shape[1];
        using var scope = NewDisposeScope(); // see Scoped
        var next = NextPositions; // every candidate sits at the row's next position
        EnsureContext(next.Max() + 1);
        Cache.Reserve(k);
        var positions = new long[BatchSize * k];
        for (int b = 0; b < BatchSize; b++) Array.Fill(positions, next[b], b * k, k);
        var mask = AttentionMasks.Siblings(Cache.ValidSlots, Cache.Capacity, Cache.Length, BatchSize, k);
        var positionsTensor = tensor(positions, BatchSize, k);
        return scope.MoveToOuter(SplitByRows(candidates, positionsTensor, mask, k)
            ?? kernel?.TryForward(candidates, positionsTensor, mask, Cache) ?? backbone.Forward(candidates, positionsTensor, mask, Cache));
    }

    /// <summary>
    /// The fewest new tokens a part of a row-split forward runs. WHY a split by whole rows: with two cores and one
    /// decoding thread, a server's batched reward step (every row's k candidates over its own prefix) is the
    /// bottleneck while the second core idles, and splitting each 64-wide product or attention head over two threads
    /// costs more in hand-offs than it gives (docs/benchmarks.md). Rows 0..B/2−1 on this thread and the rest on the
    /// other is one hand-off per forward. From 32 tokens a part, every product picks the kernel it picks for the whole.
    /// </summary>
    const int MinSplitTokens = 32;
    // The second half's kernel (its own scratch buffers), made on the first split.
    IDecodeKernel? secondKernel;

    /// <summary>Whether forwards may split by rows (PARGS_ROW_SPLIT=0 turns it off: A/B runs of one build).</summary>
    public static bool RowSplit { get; set; } = Environment.GetEnvironmentVariable("PARGS_ROW_SPLIT") != "0";

    /// <summary>Forwards run as two halves of rows on two threads so far (see <see cref="Siblings"/>).</summary>
    public long RowSplitForwards { get; private set; }

    /// <summary>
    /// The forward of <paramref name="ids"/> [B, T] as two forwards of whole rows on two <see cref="CpuThreads"/>, each on
    /// its own kernel over its rows of the cache (<see cref="KvCache.RowView"/>), when there are two threads, each part
    /// has at least <see cref="MinSplitTokens"/> tokens and the kernel says every row keeps its bits; else null. Exactly two
    /// threads: with more, each part's nested products would run inline and the forward would use two of N threads.
    /// Not under autograd: the unsplit forward falls back to torch there (a graph), which the parts' no_grad would drop.
    /// </summary>
    Tensor? SplitByRows(Tensor ids, Tensor positions, Tensor mask, int perRow)
    {
        int firstRows = BatchSize / 2;
        long fewest = (long)firstRows * perRow;
        if (!RowSplit || kernel is null || CpuThreads.Count != 2 || is_grad_enabled() || fewest < MinSplitTokens || !kernel.RowSplitKeepsBits((long)BatchSize * perRow, fewest)) return null;
        if ((secondKernel ??= backbone.Config.Family.CreateDecodeKernel(backbone)) is not { } second) return null;
        var parts = new[] { (Kernel: kernel, First: 0, Rows: firstRows), (Kernel: second, First: firstRows, Rows: BatchSize - firstRows) };
        var inputs = new (Tensor Ids, Tensor Positions, Tensor Mask, KvCache Cache)[parts.Length];
        var hidden = new Tensor?[parts.Length];
        try
        {
            for (int p = 0; p < parts.Length; p++)
            {
                var (_, first, rows) = parts[p];
                inputs[p] = (ids.narrow(0, first, rows), positions.narrow(0, first, rows), mask.narrow(0, first, rows), Cache.RowView(first, rows));
            }
            CpuThreads.For(parts.Length, (lo, hi) =>
            {
                for (int p = lo; p < hi; p++) hidden[p] = RunPart(parts[p].Kernel, inputs[p]);
            });
            if (hidden.Any(h => h is null)) return null; // a part declined: the whole runs as usual
            RowSplitForwards++;
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
    public void CommitSibling(long[] chosen)
    {
        using var scope = NewDisposeScope(); // see Scoped
        Cache.CommitSibling(chosen);
    }

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
        using var scope = NewDisposeScope(); // see Scoped
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
        return scope.MoveToOuter(hidden);
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
    public void AddCachedRows(KvCache rows)
    {
        using var scope = NewDisposeScope(); // see Scoped
        Join(Cache, rows);
    }

    /// <summary>
    /// Keeps the given rows (in that order, repeats allowed): turns one prompt into N samples after one
    /// prefill, and lets finished rows leave a continuous batch (leading slots no kept row uses are dropped, in place once they are many).
    /// </summary>
    public void SelectRows(long[] rows)
    {
        using var scope = NewDisposeScope(); // see Scoped
        if (Cache.KeepRowsInPlace(rows, dropLazily: true)) return; // rows leaving: no copy of the whole cache, and most leaves move one row
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
