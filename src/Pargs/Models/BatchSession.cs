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

    public BatchSession(TransformerBackbone backbone, int batchSize, int initialCapacity = 64)
    {
        this.backbone = backbone;
        Cache = new KvCache(backbone.Config, batchSize, initialCapacity);
    }

    public KvCache Cache { get; private set; }
    public int BatchSize => Cache.BatchSize;
    /// <summary>Committed tokens per row (padding excluded): the next token's position.</summary>
    public Tensor NextPositions => Cache.ValidPrefix.to(ScalarType.Int64).sum(1);

    /// <summary>Left-pads <paramref name="prompts"/>, runs them, commits them; returns the last position's hidden state [B, hidden].</summary>
    public Tensor Prefill(IReadOnlyList<int[]> prompts)
    {
        if (prompts.Count != BatchSize) throw new ArgumentException($"expected {BatchSize} prompts, got {prompts.Count}");
        int longest = prompts.Max(p => p.Length);
        if (prompts.Any(p => p.Length == 0)) throw new PargsException("a prompt has no tokens (add BOS or some text)");
        var ids = new long[BatchSize * longest];
        var valid = new bool[BatchSize * longest];
        for (int b = 0; b < BatchSize; b++)
        {
            int pad = longest - prompts[b].Length;
            for (int t = 0; t < prompts[b].Length; t++)
            {
                ids[b * longest + pad + t] = prompts[b][t];
                valid[b * longest + pad + t] = true;
            }
        }
        var hidden = Append(tensor(ids, BatchSize, longest), tensor(valid, BatchSize, longest));
        return hidden.select(1, longest - 1);
    }

    /// <summary>Runs and commits tokens [B, T] (valid [B, T], null = all real); returns hidden states [B, T, hidden].</summary>
    public Tensor Append(Tensor tokens, Tensor? valid = null)
    {
        valid ??= ones(tokens.shape[0], tokens.shape[1], dtype: ScalarType.Bool);
        int t = (int)tokens.shape[1];
        EnsureContext(NextPositions + valid.to(ScalarType.Int64).sum(1));
        Cache.Reserve(t);
        var prefix = Cache.ValidPrefix;
        var hidden = backbone.Forward(tokens, AttentionMasks.Positions(prefix, valid), AttentionMasks.Causal(prefix, valid), Cache);
        Cache.Advance(valid);
        return hidden;
    }

    /// <summary>Runs and commits one token per row [B]; returns hidden states [B, hidden].</summary>
    public Tensor Step(Tensor tokens) => Append(tokens.view(-1, 1)).select(1, 0);

    /// <summary>
    /// Hidden states [B, k, hidden] of k one-token extensions per row (<paramref name="candidates"/> [B, k]),
    /// each seeing only the committed prefix and itself. Nothing is committed; call
    /// <see cref="CommitSibling"/> with the chosen column.
    /// </summary>
    public Tensor Siblings(Tensor candidates)
    {
        int k = (int)candidates.shape[1];
        var next = NextPositions; // every candidate sits at the row's next position
        EnsureContext(next + 1);
        Cache.Reserve(k);
        var prefix = Cache.ValidPrefix;
        var positions = next.unsqueeze(1).expand(BatchSize, k);
        return backbone.Forward(candidates, positions, AttentionMasks.Siblings(prefix, k), Cache);
    }

    /// <summary>Positions each row will need [B] must fit the model's context.</summary>
    void EnsureContext(Tensor positionsNeeded)
    {
        long longest = positionsNeeded.max().item<long>();
        int context = backbone.Config.MaxPositions;
        if (longest > context)
            throw new PargsException($"the sequence needs {longest} positions but the model's context is {context} (max_position_embeddings); shorten the prompt or max_new_tokens");
    }

    /// <summary>Commits column <paramref name="chosen"/>[b] of the last <see cref="Siblings"/> call as each row's next token.</summary>
    public void CommitSibling(long[] chosen) => Cache.CommitSibling(chosen);

    /// <summary>Keeps the given rows (in that order, repeats allowed): turns one prompt into N samples after one prefill.</summary>
    public void SelectRows(long[] rows)
    {
        var old = Cache;
        Cache = old.SelectRows(rows);
        old.Dispose();
    }

    public void Dispose() => Cache.Dispose();
}
