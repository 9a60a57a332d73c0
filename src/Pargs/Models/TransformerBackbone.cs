using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pargs.Models;

/// <summary>
/// A decoder-only transformer without its head: token ids in, final-normalised hidden states out.
/// A causal LM puts <c>lm_head</c> on top, a reward model puts <c>score</c> on top; both share this.
/// </summary>
public abstract class TransformerBackbone : nn.Module
{
    protected TransformerBackbone(string name, ModelConfig config) : base(name) => Config = config;

    public ModelConfig Config { get; }

    /// <summary>How the KV caches of this backbone's sessions store keys and values (<c>--kv-cache</c>); float32 unless set.</summary>
    public KvCacheType KvCacheType { get; set; } = KvCacheType.F32;

    /// <summary>Hugging Face's name for the backbone inside a ...ForCausalLM: "model" (Llama) or "transformer" (GPT-2).</summary>
    public string HuggingFacePrefix => Config.Family.HuggingFacePrefix;

    /// <summary>The token embedding matrix [vocab, hidden], which a tied lm_head shares.</summary>
    public abstract Parameter TokenEmbeddingWeight { get; }

    /// <summary>
    /// Runs tokens <paramref name="inputIds"/> [B, T] at <paramref name="positions"/> [B, T] with the boolean
    /// <paramref name="mask"/> [B, 1, T, S] (S = cache length + T). With a cache, new keys/values are written
    /// into it (the caller commits them). Returns hidden states [B, T, hidden]. Always the torch ops (the
    /// reference); a family's <see cref="IDecodeKernel"/> is tried by the caller that owns the cache.
    /// The family's layers run inside a DisposeScope of this call (see <see cref="ForwardInScope"/>).
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(ForwardInScope(inputIds, positions, mask, cache));
    }

    /// <summary>
    /// The family's forward (<see cref="Forward"/>'s contract), run inside a DisposeScope that <see cref="Forward"/> opens.
    /// WHY a scope around every backbone forward: TorchSharp 0.107 frees a tensor's native handle in its finalizer, and
    /// a chain's intermediate (<c>silu(gate) * up</c>, <c>x.matmul(w).add_(b)</c>) is unreachable once its handle is
    /// read, so outside a scope a collection on another thread can free it while libtorch reads it. The scope's set
    /// holds every tensor made here until the forward returns, then frees them at once (the hidden states move to the
    /// caller's scope, or out of every scope when the caller has none). One scope per forward, not per layer: a handful
    /// of allocations against a forward's milliseconds. Tensors a forward keeps (a KV cache's storage) detach themselves.
    /// </summary>
    protected abstract Tensor ForwardInScope(Tensor inputIds, Tensor positions, Tensor mask, KvCache? cache);

    /// <summary>
    /// Hidden states [B, T, hidden] of a padded batch in one causal forward without a cache (training, perplexity,
    /// whole-sequence rewards). <paramref name="valid"/> [B, T] marks real tokens.
    /// </summary>
    public Tensor ForwardPadded(Tensor inputIds, Tensor valid)
    {
        using var scope = NewDisposeScope(); // the positions and the mask are this call's (see ForwardInScope)
        return scope.MoveToOuter(Forward(inputIds, AttentionMasks.Positions(null, valid), AttentionMasks.Causal(null, valid), null));
    }

    /// <summary>
    /// The head-on-backbone construction <see cref="CausalLM"/> and <c>RewardModel</c> share: the config's family
    /// builds the backbone, which is registered in <paramref name="owner"/> under the family's Hugging Face prefix,
    /// so the owner's parameter names are transformers' (<c>model.layers.0…</c>, then the owner adds its head).
    /// </summary>
    public static TransformerBackbone BuildInto(nn.Module owner, ModelConfig config)
    {
        var family = config.Family;
        var backbone = family.CreateBackbone(config);
        owner.register_module(family.HuggingFacePrefix, backbone);
        return backbone;
    }

    /// <summary>
    /// Grouped-query attention without copying keys/values: the H query heads are folded into KvH groups
    /// of H/KvH × T query rows, so each kv head serves its queries in one SDPA call (what repeat_kv does,
    /// minus the copy). <paramref name="groupedMask"/> is the mask already repeated for the groups.
    /// </summary>
    protected internal static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor groupedMask, int heads, int kvHeads)
    {
        long b = q.shape[0], t = q.shape[2], d = q.shape[3];
        int groups = heads / kvHeads;
        var qg = q.reshape(b, kvHeads, groups * t, d);
        var o = nn.functional.scaled_dot_product_attention(qg, k, v, attn_mask: groupedMask);
        return o.view(b, heads, t, d).transpose(1, 2).reshape(b, t, heads * d);
    }

    /// <summary>Repeats a [B, 1, T, S] mask for the query groups of <see cref="Attend"/>.</summary>
    protected internal static Tensor GroupMask(Tensor mask, int groups)
    {
        if (groups == 1) return mask;
        long b = mask.shape[0], t = mask.shape[2], s = mask.shape[3];
        return mask.unsqueeze(2).expand(b, 1, groups, t, s).reshape(b, 1, groups * t, s);
    }
}
