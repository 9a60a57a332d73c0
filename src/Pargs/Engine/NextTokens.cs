using Pargs.Decoding;
using Pargs.Models.Cpu;
using static TorchSharp.torch;

namespace Pargs.Engine;

/// <summary>
/// The next-token distribution of every row of a session after a step: what a decoding rule reads. Local
/// engines hold the full log-probabilities [B, V] — a torch tensor, or (the host engine, <see cref="HostSession"/>)
/// a host array from which top-k and top-p are computed without torch; an engine that can only return each row's
/// top tokens (a remote server) answers <see cref="TopK"/> and refuses <see cref="LogProbs"/>, so a method that needs
/// the whole vocabulary says so instead of reading a truncated distribution.
/// </summary>
public sealed class NextTokens
{
    readonly Tensor? logProbs;
    // Host log-probabilities [rows, vocab] row-major (the session's buffer, valid until its next call), and the tensor
    // made of them once for a method that asks for LogProbs (the only torch on the host engine's path). The tensor is
    // detached from every dispose scope and owned by the session, which releases it at its next call (ReleaseHostTensor):
    // a caller's step scope may end before another reader of the same answer. Typed IDisposable so that the session's
    // release compiles without TorchSharp's assembly (the host engine never loads it).
    readonly float[]? hostLogProbs;
    readonly int hostRows, hostVocab;
    IDisposable? hostTensor;
    bool released;
    readonly float[][]? topLogProbs;
    readonly long[][]? topIds;
    readonly string? source;

    /// <param name="logProbs">log π(v | x, y&lt;t) for every token v: [B, V].</param>
    public NextTokens(Tensor logProbs) => this.logProbs = logProbs;

    /// <summary>Only each row's most likely tokens (most likely first), as a server returns them; <paramref name="source"/> names it in errors.</summary>
    public NextTokens(float[][] topLogProbs, long[][] topIds, string source)
    {
        this.topLogProbs = topLogProbs;
        this.topIds = topIds;
        this.source = source;
    }

    /// <summary>Host log-probabilities: <paramref name="logProbs"/>[b · vocab + v] = log π(v) of row b (the caller's buffer, not copied).</summary>
    public NextTokens(float[] logProbs, int rows, int vocab)
    {
        if ((long)rows * vocab > logProbs.Length) throw new ArgumentException($"{logProbs.Length} log-probabilities for {rows} rows of {vocab}");
        hostLogProbs = logProbs;
        hostRows = rows;
        hostVocab = vocab;
    }

    /// <summary>log π(v | x, y&lt;t) for every token v: [B, V] (from host log-probabilities: a tensor made on first use).</summary>
    public Tensor LogProbs => logProbs
        ?? (hostLogProbs is not null ? HostTensor() : null)
        ?? throw new PargsException($"{source ?? "this engine"} returns only each row's top tokens, not the whole distribution");

    Tensor HostTensor()
    {
        ThrowIfOverwritten();
        return (Tensor)(hostTensor ??= tensor(hostLogProbs!.AsSpan(0, hostRows * hostVocab).ToArray(), hostRows, hostVocab).DetachFromDisposeScope());
    }

    void ThrowIfOverwritten()
    {
        if (released) throw new InvalidOperationException("these log-probabilities were overwritten by the session's next call; read them before the next step");
    }

    /// <summary>The host session's next call overwrites the buffer: the tensor made of it (if any) is disposed, and no new one is made.</summary>
    internal void ReleaseHostTensor()
    {
        released = true;
        hostTensor?.Dispose();
        hostTensor = null;
    }

    /// <summary>The k most likely tokens per row, most likely first, as host arrays: (log-probs [B · k], ids [B · k]).</summary>
    public (float[] LogProbs, long[] Ids) TopKRows(int k)
    {
        if (hostLogProbs is not null)
        {
            ThrowIfOverwritten();
            var values = new float[hostRows * k];
            var ids = new long[hostRows * k];
            DecodingSteps.TopK(hostLogProbs.AsSpan(0, hostRows * hostVocab), hostRows, hostVocab, k, values, ids);
            return (values, ids);
        }
        if (logProbs is null) // a server's top tokens: already host arrays
        {
            int rows = topIds!.Length;
            var values = new float[rows * k];
            var ids = new long[rows * k];
            for (int b = 0; b < rows; b++)
            {
                if (topIds[b].Length < k) throw new PargsException($"{source}: {topIds[b].Length} tokens per step were asked for but the method needs k = {k}");
                Array.Copy(topLogProbs![b], 0, values, b * k, k);
                Array.Copy(topIds[b], 0, ids, b * k, k);
            }
            return (values, ids);
        }
        return TensorTopKRows(logProbs, k);
    }

    // Apart so that compiling TopKRows/TopP for host log-probabilities never resolves a torch method (the host engine
    // does not even load TorchSharp's assembly).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static unsafe (float[] LogProbs, long[] Ids) TensorTopKRows(Tensor logProbs, int k)
    {
        // A contiguous float32 [B, V] is read in place by the host top-k (the host engine's), its rows split over the
        // CpuThreads: torch's topk took ~0.06 ms a row of a 32,000 vocabulary, a twentieth of a 16-row serving step. The same
        // values and ids (ties: the lower id first, where torch leaves their order unspecified).
        if (logProbs.dim() == 2 && TensorMemory.Floats(logProbs) is var data && data != null && k >= 1 && k <= logProbs.shape[1])
        {
            int rows = (int)logProbs.shape[0], vocab = (int)logProbs.shape[1];
            var values = new float[rows * k];
            var ids = new long[rows * k];
            var start = (IntPtr)data;
            CpuThreads.For(rows, (lo, hi) => DecodingSteps.TopK(new ReadOnlySpan<float>((float*)start + (long)lo * vocab, (hi - lo) * vocab), hi - lo, vocab, k,
                                                                 values.AsSpan(lo * k, (hi - lo) * k), ids.AsSpan(lo * k, (hi - lo) * k)));
            return (values, ids);
        }
        var (logp, tensorIds) = DecodingSteps.TopK(logProbs, k);
        return (logp.contiguous().data<float>().ToArray(), tensorIds.contiguous().data<long>().ToArray());
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static (float[][] LogProbs, long[][] Ids) TensorTopP(Tensor logProbs, double p) => DecodingSteps.TopP(logProbs, p);

    /// <summary>The k most likely tokens per row, most likely first: (log-probs [B, k], ids [B, k]).</summary>
    public (Tensor LogProbs, Tensor Ids) TopK(int k)
    {
        if (logProbs is not null) return DecodingSteps.TopK(logProbs, k);
        var (values, ids) = TopKRows(k); // host log-probabilities or a server's top tokens
        int rows = ids.Length / k;
        return (tensor(values, rows, k), tensor(ids, rows, k));
    }

    /// <summary>
    /// Nucleus candidates per row (see <see cref="DecodingSteps.TopP"/>). From top tokens only, this is exact when their mass
    /// reaches p (the nucleus lies inside them); otherwise it is refused, naming the mass.
    /// </summary>
    public (float[][] LogProbs, long[][] Ids) TopP(double p)
    {
        if (logProbs is not null) return TensorTopP(logProbs, p);
        if (hostLogProbs is not null)
        {
            ThrowIfOverwritten();
            return DecodingSteps.TopP(hostLogProbs.AsSpan(0, hostRows * hostVocab), hostRows, hostVocab, p);
        }
        var outLogp = new float[topIds!.Length][];
        var outIds = new long[topIds.Length][];
        for (int b = 0; b < topIds.Length; b++)
        {
            double mass = 0;
            int n = 0;
            while (n < topIds[b].Length && (n == 0 || mass < p))
            {
                mass += Math.Exp(topLogProbs![b][n]);
                n++;
            }
            if (mass < p)
                throw new PargsException($"{source}: top-p {p} needs more than the {topIds[b].Length} most likely tokens the server returned (their mass is {mass:G4}); ask for more log-probabilities per step");
            outLogp[b] = topLogProbs![b][..n];
            outIds[b] = topIds[b][..n];
        }
        return (outLogp, outIds);
    }
}
