using Pargs.Decoding;
using Pargs.Models;
using Pargs.Models.Families.Llama;

namespace Pargs.Engine;

/// <summary>
/// A session of rows over a model in its stored precision (<see cref="HostLanguageModel"/>), computed without torch:
/// the decode kernel's host entry (<see cref="LlamaDecodeKernel.ForwardHost"/>: the same body as the torch session's
/// forward) over a native KV cache (<see cref="HostKvCache"/>), the head's logits and their log-softmax into buffers the
/// session keeps, and <see cref="NextTokens"/> that answer top-k / top-p on the host. WHY: on this path torch only carried
/// ids, masks, caches and the [B, V] log-probabilities, yet loading libtorch cost ~75 MiB resident (its operator registry
/// alone is 53 MiB of heap) — the difference between 1.1·S and 1.27·S at the 0.5B shape (docs/benchmarks.md).
/// The same left-padded, right-aligned rows as <see cref="BatchSession"/>: masks and positions as
/// <see cref="AttentionMasks"/> builds them, so a row's numbers never depend on its neighbours.
/// </summary>
public sealed class HostSession : ILanguageModelSession
{
    readonly HostLanguageModel model;
    readonly LlamaDecodeKernel kernel;
    readonly int capacity;
    // Read once: HostLanguageModel.KvCacheType is settable, and every cache of a session (running, joining, joined) must
    // have one element size (HostKvCache.Join refuses a mix).
    readonly KvCacheType cacheType;
    HostKvCache cache;
    // The last answer: the session lets go of the tensor it may have made (NextTokens.LogProbs) at its next call, when the
    // buffer under it is overwritten (as LocalSession disposes its last log-probabilities).
    NextTokens? answered;
    // [Rows, V] log-probabilities of the last call (what the returned NextTokens reads; a step overwrites it), and the
    // buffer rows joining or leaving are gathered into (then swapped).
    float[] logProbs = [], spare = [];
    float[] hidden = [], last = [];

    public HostSession(HostLanguageModel model, int capacity)
    {
        this.model = model;
        this.capacity = Math.Max(1, capacity);
        cacheType = model.KvCacheType;
        kernel = model.CreateKernel();
        cache = new HostKvCache(model.Config, 0, 1, cacheType);
    }

    public int Rows => cache.Rows;
    int Vocab => model.Config.VocabSize;
    int HiddenSize => model.Config.HiddenSize;

    public NextTokens AddRows(IReadOnlyList<int[]> prompts)
    {
        if (prompts.Count == 0) return Answer(logProbs, Rows);
        // The joining rows are prefilled left-padded into a cache of their own, then joined right-aligned.
        var (ids, valid, longest) = PromptBatch.LeftPadded(prompts);
        int n = prompts.Count;
        model.BeforeFirstForward();
        var joining = new HostKvCache(model.Config, n, capacity, cacheType);
        try
        {
            Forward(joining, ids, valid, longest);
            // The last position of each row (right-aligned: every row's last token is in the last column).
            Ensure(ref last, n * HiddenSize);
            for (int b = 0; b < n; b++) Array.Copy(hidden, ((long)b * longest + longest - 1) * HiddenSize, last, (long)b * HiddenSize, HiddenSize);
            int running = Rows;
            Ensure(ref spare, (running + n) * Vocab);
            Array.Copy(logProbs, spare, (long)running * Vocab);
            LogProbsInto(last, n, spare, running);
            var joined = running == 0 ? joining : HostKvCache.Join(cache, joining, capacity);
            if (!ReferenceEquals(joined, joining)) joining.Dispose();
            cache.Dispose();
            cache = joined;
        }
        catch
        {
            joining.Dispose(); // a prompt that cannot join leaves the running rows as they were
            throw;
        }
        (logProbs, spare) = (spare, logProbs);
        return Answer(logProbs, Rows);
    }

    public NextTokens Append(long[] tokens)
    {
        if (tokens.Length != Rows) throw new ArgumentException($"{tokens.Length} tokens for {Rows} rows");
        // The heap pages loading and the first forward's compilation freed go back to the system (at most every 50 ms),
        // as before a LocalEngine step.
        Checkpoints.FreedHeapPages.Trim();
        var valid = new bool[Rows];
        Array.Fill(valid, true);
        Forward(cache, tokens, valid, 1);
        // In place: the last answer is read before the next step is asked for (as LocalSession drops its tensor).
        LogProbsInto(hidden, Rows, logProbs, 0);
        return Answer(logProbs, Rows);
    }

    public NextTokens KeepRows(int[] rows)
    {
        var kept = cache.SelectRows(rows, capacity);
        cache.Dispose();
        cache = kept;
        Ensure(ref spare, rows.Length * Vocab);
        for (int i = 0; i < rows.Length; i++) Array.Copy(logProbs, (long)rows[i] * Vocab, spare, (long)i * Vocab, Vocab);
        (logProbs, spare) = (spare, logProbs);
        return Answer(logProbs, Rows);
    }

    NextTokens Answer(float[] buffer, int rows)
    {
        answered?.ReleaseHostTensor();
        return answered = new(buffer, rows, Vocab);
    }

    /// <summary>Runs and commits <paramref name="ids"/> [rows, t] (<paramref name="valid"/> marks real tokens) over <paramref name="target"/>; hidden states go to <see cref="hidden"/>.</summary>
    void Forward(HostKvCache target, long[] ids, bool[] valid, int t)
    {
        int rows = target.Rows;
        var committed = target.CommittedTokens;
        PromptBatch.EnsureContext(committed, valid, rows, t, model.Config.MaxPositions);
        target.Reserve(t);
        var positions = AttentionMasks.Positions(committed, valid, rows, t);
        int length = target.Length;
        var mask = AttentionMasks.CausalHost(target.ValidSlots, target.Capacity, length, valid, rows, t);
        Ensure(ref hidden, rows * t * HiddenSize);
        kernel.ForwardHost(ids, positions, mask, rows, t, length, target.Capacity, target.Keys, target.Values, target.Half, hidden);
        target.Advance(valid, t);
    }

    /// <summary>The head's logits of <paramref name="rows"/> hidden states, log-softmaxed, into <paramref name="output"/> from row <paramref name="firstRow"/> on.</summary>
    unsafe void LogProbsInto(float[] states, int rows, float[] output, int firstRow)
    {
        fixed (float* x = states)
        fixed (float* y = output)
            model.Head.MatMul(x, rows, y + (long)firstRow * Vocab);
        DecodingSteps.LogSoftmaxInPlace(output.AsSpan(firstRow * Vocab, rows * Vocab), rows, Vocab);
    }

    static void Ensure(ref float[] buffer, int size)
    {
        if (buffer.Length < size) buffer = new float[size];
    }

    public void Dispose()
    {
        answered?.ReleaseHostTensor();
        cache.Dispose();
    }
}
